"""API test fixtures: an app on the test's database (SQLite and PostgreSQL), and clients with API keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from flywheel.api.app import API_PREFIX, create_app
from flywheel.datasets.models import Dataset
from flywheel.platform.models import User
from flywheel.platform.schemas import UserCreate
from flywheel.platform.users import create_user
from flywheel.store import new_id


@dataclass
class Api:
    """A client speaking for one user: paths are relative to `/api/v1`, the API key is sent on every call."""

    client: TestClient
    user: User
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, API_PREFIX + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    # --- builders: create through the API, fail loudly if that does not work ------------------------

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
        return response.json() if response.content else None

    def project(self, name: str = "look-at", **fields: Any) -> dict[str, Any]:
        return self.ok(self.post("/projects", json={"name": name, **fields}), 201)

    def experiment(self, project_id: str, name: str = "ppo", **fields: Any) -> dict[str, Any]:
        return self.ok(self.post("/experiments", json={"project_id": project_id, "name": name, **fields}), 201)

    def iteration(self, experiment_id: str, **fields: Any) -> dict[str, Any]:
        return self.ok(self.post(f"/experiments/{experiment_id}/iterations", json=fields), 201)

    def upload(self, experiment_id: str, name: str, data: bytes, **params: Any) -> dict[str, Any]:
        response = self.post(
            "/assets",
            params={"experiment_id": experiment_id, "name": name, **params},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return self.ok(response, 201)


@pytest.fixture
def app(flywheel_home: Path) -> FastAPI:
    """The app, its settings pointing at this test's home and database."""
    return create_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A test client without credentials (raise_server_exceptions off: a 5xx is an answer to assert on)."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _api_for(client: TestClient, session: Session, name: str) -> Api:
    user, key = create_user(session, UserCreate(name=name))
    session.commit()
    return Api(client=client, user=user, key=key)


@pytest.fixture
def api(client: TestClient, session: Session) -> Api:
    """Alice's client."""
    return _api_for(client, session, "alice")


@pytest.fixture
def other_api(client: TestClient, session: Session) -> Api:
    """Bob's client: he must not see any of Alice's objects."""
    return _api_for(client, session, "bob")


def make_eval(session: Session, api: Api, experiment_id: str, iteration_id: str, name: str = "eval") -> str:
    """An eval (a dataset produced by an iteration), written through the ORM until the datasets API exists."""
    dataset = Dataset(
        id=new_id("dst"),
        owner_id=api.user.id,
        name=name,
        generated_by_experiment_id=experiment_id,
        generated_by_iteration_id=iteration_id,
    )
    session.add(dataset)
    session.commit()
    return dataset.id


def make_dataset(session: Session, api: Api, name: str = "demos") -> str:
    """A plain (recorded) dataset, written through the ORM until the datasets API exists."""
    dataset = Dataset(id=new_id("dst"), owner_id=api.user.id, name=name)
    session.add(dataset)
    session.commit()
    return dataset.id


@dataclass
class World:
    """One of each object, owned by one user: a project, an experiment with an iteration, an asset, an eval."""

    project: dict[str, Any]
    experiment: dict[str, Any]
    iteration: dict[str, Any]
    asset: dict[str, Any]
    eval_id: str
    dataset_id: str


@pytest.fixture
def world(api: Api, session: Session) -> World:
    """Alice's objects, for the permission checks."""
    project = api.project("look-at")
    experiment = api.experiment(project["id"], "ppo")
    iteration = api.iteration(experiment["id"], notes="first")
    asset = api.upload(experiment["id"], "model.onnx", b"weights", iteration_id=iteration["id"], tags=["best"])
    eval_id = make_eval(session, api, experiment["id"], iteration["id"])
    dataset_id = make_dataset(session, api)
    api.ok(api.put(f"/experiments/{experiment['id']}/datasets/{dataset_id}"))
    return World(project, experiment, iteration, asset, eval_id, dataset_id)


def assert_error(response: httpx.Response, status: int, *, field: str | None = None) -> dict[str, Any]:
    """Assert an error answer: its status, the common body shape, and that it names `field` (or a part of it)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] and body["message"], body
    if field is not None:
        named = [body.get("field"), *(e["field"] for e in body.get("errors") or [])]
        assert any(n == field or str(n).startswith(field + ".") for n in named), f"{field!r} not named in {body}"
        assert field in body["message"], f"{field!r} not in the message {body['message']!r}"
    return body


def blob_files(home: Path) -> list[Path]:
    """The blob files on disk (temporaries excluded)."""
    root = home / "blobs"
    return sorted(p for p in root.glob("??/*") if p.is_file()) if root.exists() else []
