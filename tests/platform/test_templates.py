"""The template registry: schema and defaults come from the recipe's Pydantic config."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from flywheel.errors import NotFound
from flywheel.platform.templates import get_template, list_templates, register_template


class PPOConfig(BaseModel):
    """PPO settings."""

    learning_rate: float = Field(3e-4, gt=0, description="Adam step size.")
    n_steps: int = Field(2048, ge=1)


def test_register_derives_schema_and_defaults(session: Session) -> None:
    t = register_template(session, template_id="ppo", description="PPO", config_model=PPOConfig, git_commit="abc123")
    session.commit()
    assert t.default_config == {"learning_rate": 3e-4, "n_steps": 2048}
    assert t.config_schema["properties"]["learning_rate"]["exclusiveMinimum"] == 0
    assert (t.name, t.version, t.git_commit) == ("ppo", 1, "abc123")


def test_reregistering_refreshes_in_place(session: Session) -> None:
    register_template(session, template_id="ppo", description="old", config_model=PPOConfig)
    register_template(session, template_id="ppo", description="new", config_model=PPOConfig, version=2)
    session.commit()
    assert [(t.id, t.description, t.version) for t in list_templates(session)] == [("ppo", "new", 2)]


def test_unknown_template_names_the_known_ones(session: Session) -> None:
    register_template(session, template_id="ppo", description="PPO", config_model=PPOConfig)
    with pytest.raises(NotFound) as caught:
        get_template(session, "ppo2")
    assert "ppo" in (caught.value.hint or "")
