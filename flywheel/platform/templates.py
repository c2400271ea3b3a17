"""The template registry: versioned training recipes with a config schema and defaults."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput, NotFound
from flywheel.platform.models import Template


def register_template(
    session: Session,
    *,
    template_id: str,
    description: str,
    config_model: type[BaseModel],
    git_commit: str = "",
    version: int = 1,
) -> Template:
    """Register (or refresh) a template from its Pydantic config model.

    The JSON Schema and the defaults are derived from the model, so they never drift from the code.

    Example:
        >>> class PPOConfig(BaseModel):
        ...     learning_rate: float = 3e-4
        >>> register_template(session, template_id="ppo", description="PPO", config_model=PPOConfig)  # doctest: +SKIP
    """
    schema = config_model.model_json_schema()
    defaults = config_model().model_dump(mode="json")
    template = session.get(Template, template_id)
    if template is None:
        template = Template(id=template_id)
        session.add(template)
    template.name = template_id.split("@")[0]
    template.version = version
    template.description = description
    template.config_schema = schema
    template.default_config = defaults
    template.git_commit = git_commit
    session.flush()
    return template


def list_templates(session: Session) -> list[Template]:
    """Every registered template, by id."""
    return list(session.scalars(select(Template).order_by(Template.id)))


def get_template(session: Session, template_id: str) -> Template:
    """One template, or NotFound naming the ones that exist."""
    template = session.get(Template, template_id)
    if template is None:
        known = ", ".join(t.id for t in list_templates(session)) or "none registered yet"
        raise NotFound("template", template_id, hint=f"Known templates: {known}.")
    return template


def check_config_keys(template: Template, config: dict[str, Any], *, field: str = "template_config") -> None:
    """Refuse config keys the template's schema does not declare, naming the allowed ones."""
    allowed = sorted(template.config_schema.get("properties", {}))
    for key in config:
        if key not in allowed:
            raise InvalidInput(
                f"unknown config key {key!r} for template {template.id}", field=f"{field}.{key}", allowed=allowed
            )
