"""Who am I through the API, and no way to create users without credentials."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.platform.models import User
from tests.api.conftest import Api, assert_error


def test_me_is_the_keys_owner_without_secrets(api: Api, other_api: Api) -> None:
    me = api.ok(api.get("/users/me"))
    assert (me["id"], me["name"], me["spend_limit_usd"], me["spend_usd"]) == (api.user.id, "alice", 100.0, 0.0)
    assert not {"api_key", "api_key_hash"} & set(me), "keys are never shown again"
    assert other_api.ok(other_api.get("/users/me"))["name"] == "bob"


def test_missing_or_bad_key_is_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer fw_wrong"}, {"Authorization": api.key}):
        response = api.client.get("/api/v1/users/me", headers=headers)
        body = assert_error(response, 401)
        assert body["error"] == "Unauthorized" and body["hint"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_users_cannot_be_created_through_the_api(api: Api, session: Session) -> None:
    before = session.scalar(select(func.count()).select_from(User))
    for headers in ({}, api.headers):
        response = api.client.post("/api/v1/users", json={"name": "mallory"}, headers=headers)
        assert response.status_code in (404, 405), response.text
    assert session.scalar(select(func.count()).select_from(User)) == before
