"""The request's session and user: committed on success, rolled back on error, database chosen per request."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.platform.models import Project
from flywheel.store import new_id
from tests.api.conftest import Api, assert_error


def test_a_failing_request_changes_nothing(api: Api, session: Session) -> None:
    project = api.project("look-at")
    experiment = api.experiment(project["id"])
    # The rename is applied in the session before the unknown eval is found: the rollback must undo it.
    body = {"name": "renamed", "showcases": [{"eval_id": "dst_missing"}]}
    assert_error(api.patch(f"/projects/{project['id']}", json=body), 404)
    assert api.ok(api.get(f"/projects/{project['id']}"))["name"] == "look-at"
    # The experiment is moved under its parent before the dataset lookup fails.
    child = api.experiment(project["id"], "child")
    api.ok(api.patch(f"/experiments/{child['id']}", json={"parent_id": experiment["id"]}))
    body = {"make_root": True, "template_config": {"x": 1}}
    assert_error(api.patch(f"/experiments/{child['id']}", json=body), 422, field="template_config")
    assert api.ok(api.get(f"/experiments/{child['id']}"))["parent_id"] == experiment["id"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_database_is_chosen_per_request(api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert api.ok(api.get("/users/me"))["name"] == "alice"
    monkeypatch.setenv("FLYWHEEL_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert_error(api.get("/users/me"), 401)  # same app, another (new, migrated) database: the key is unknown there


def test_the_key_is_read_from_the_authorization_header_only(api: Api, client: TestClient) -> None:
    assert_error(client.get("/api/v1/users/me", params={"api_key": api.key}), 401)
    assert_error(client.get("/api/v1/users/me", headers={"X-API-Key": api.key}), 401)
    assert client.get("/api/v1/users/me", headers={"authorization": f"bearer {api.key}"}).status_code == 200


def test_a_change_the_database_refuses_at_commit_is_409_not_2xx(app: FastAPI, api: Api, session: Session) -> None:
    project = api.project("look-at")

    @app.post("/api/v1/_test/duplicate")
    def duplicate(db: SessionDep, user: CurrentUser) -> dict[str, str]:
        # What a concurrent request could do between a service's check and the commit: the same name again.
        db.add(Project(id=new_id("prj"), owner_id=user.id, name="look-at"))
        return {"status": "stored?"}

    body = assert_error(api.post("/_test/duplicate"), 409)
    assert body["hint"]
    assert [p["id"] for p in api.ok(api.get("/projects"))] == [project["id"]], "the refused commit stored nothing"
