"""The emergency stop's API doors (both backends): stop, state, reset, permissions, bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Api, assert_error


def test_stop_then_state_then_reset(api: Api) -> None:
    state = api.ok(api.post("/emergency_stop", json={"reason": "person in the cell"}))
    assert state["latched"] is True and state["latches"][0]["held_by_name"] == "alice"
    read = api.ok(api.get("/emergency_stop", params={"scope": "reachy-01"}))
    assert read["scope"] == "reachy-01" and read["latched"] is True  # '*' covers every device
    assert [(e["action"], e["user_name"], e["reason"]) for e in read["events"]] == [
        ("stop", "alice", "person in the cell")]
    reset = api.ok(api.post("/emergency_stop/reset", json={"reason": "clear"}))
    assert reset["latched"] is False and reset["events"][0]["action"] == "reset"


def test_the_ui_button_posts_an_empty_body(api: Api) -> None:
    assert api.ok(api.post("/emergency_stop"))["latched"] is True
    assert api.ok(api.post("/emergency_stop/reset"))["latched"] is False


def test_another_users_reset_answers_409_and_changes_nothing(api: Api, other_api: Api) -> None:
    api.ok(api.post("/emergency_stop", json={"reason": "mine"}))
    body = assert_error(other_api.post("/emergency_stop/reset", json={}), 409)
    assert "held by alice" in body["message"]
    assert api.ok(api.get("/emergency_stop"))["latched"] is True
    assert len(api.ok(api.get("/emergency_stop"))["events"]) == 1
    assert_error(other_api.post("/emergency_stop/reset", json={"force": True}), 422, field="reason")
    forced = other_api.ok(other_api.post("/emergency_stop/reset", json={"force": True, "reason": "checked"}))
    assert forced["latched"] is False and forced["events"][0]["forced"] is True
    assert forced["events"][0]["user_name"] == "bob"


def test_any_user_can_stop_and_reset_when_not_latched_is_409(api: Api, other_api: Api) -> None:
    assert other_api.ok(other_api.post("/emergency_stop", json={"scope": "car-1"}))["latched"] is True
    assert_error(api.post("/emergency_stop/reset", json={}), 409)


def test_without_an_api_key_every_door_answers_401(client: TestClient) -> None:
    for method, path in [("POST", "/emergency_stop"), ("POST", "/emergency_stop/reset"), ("GET", "/emergency_stop")]:
        assert client.request(method, f"/api/v1{path}").status_code == 401


def test_bad_input_answers_422_naming_the_field(api: Api) -> None:
    assert_error(api.post("/emergency_stop", json={"scope": "two words"}), 422, field="scope")
    assert_error(api.post("/emergency_stop", json={"reason": "x" * 501}), 422, field="reason")
    assert_error(api.post("/emergency_stop", json={"speed": 0}), 422, field="speed")
    assert_error(api.get("/emergency_stop", params={"limit": 0}), 422, field="limit")
    assert_error(api.get("/emergency_stop", params={"scope": "a/b"}), 422, field="scope")
    assert api.ok(api.get("/emergency_stop"))["events"] == []  # nothing was logged
