"""Templates: the registry of versioned training recipes, each with its config schema and defaults.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1
    curl -H "$H" $API/templates
    curl -H "$H" $API/templates/ppo
"""

from __future__ import annotations

from fastapi import APIRouter

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.params import TemplateId
from flywheel.platform import templates
from flywheel.platform.schemas import TemplatePublic

router = APIRouter(prefix="/templates", tags=["templates"])


@router.get("")
def list_templates(session: SessionDep, _user: CurrentUser) -> list[TemplatePublic]:
    """Every registered template, by id."""
    return [TemplatePublic.model_validate(t) for t in templates.list_templates(session)]


@router.get("/{template_id}")
def read_template(session: SessionDep, _user: CurrentUser, template_id: TemplateId) -> TemplatePublic:
    """One template: its config JSON Schema, default config and the git commit of its code."""
    return TemplatePublic.model_validate(templates.get_template(session, template_id))
