"""The template registry through the API: list and show, config schema and defaults from the Pydantic model."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from flywheel.platform.templates import register_template
from tests.api.conftest import Api, assert_error


class DQNConfig(BaseModel):
    learning_rate: float = Field(1e-4, gt=0, description="Adam step size.")
    buffer_size: int = 100_000


def test_list_and_show(api: Api, session: Session) -> None:
    assert api.ok(api.get("/templates")) == []
    register_template(
        session, template_id="dqn", description="Deep Q-learning", config_model=DQNConfig, git_commit="c0ffee"
    )
    register_template(session, template_id="bc", description="Behaviour cloning", config_model=DQNConfig, version=2)
    session.commit()

    assert [t["id"] for t in api.ok(api.get("/templates"))] == ["bc", "dqn"]
    dqn = api.ok(api.get("/templates/dqn"))
    assert (dqn["name"], dqn["version"], dqn["description"], dqn["git_commit"]) == (
        "dqn",
        1,
        "Deep Q-learning",
        "c0ffee",
    )
    assert dqn["default_config"] == {"learning_rate": 1e-4, "buffer_size": 100_000}
    assert dqn["config_schema"]["properties"]["learning_rate"]["description"] == "Adam step size."

    body = assert_error(api.get("/templates/ppo"), 404)
    assert "bc, dqn" in body["hint"], "the known templates are named"


def test_requests_without_a_valid_key_are_401(api: Api) -> None:
    for path in ("/templates", "/templates/dqn"):
        for headers in ({}, {"Authorization": "Bearer fw_not-a-key"}):
            assert_error(api.client.get("/api/v1" + path, headers=headers), 401)
