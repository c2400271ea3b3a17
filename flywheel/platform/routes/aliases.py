"""A project's aliases (named pointers to iterations; autoresearch keeps ``champion``).

Example:
    curl -H "Authorization: Bearer $FLYWHEEL_API_KEY" http://127.0.0.1:8000/api/v1/projects/drive/aliases
"""

from __future__ import annotations

from fastapi import APIRouter

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.params import ProjectIdent
from flywheel.platform.aliases import AliasPublic, list_aliases

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("/{project_id}/aliases")
def read_aliases(session: SessionDep, user: CurrentUser, project_id: ProjectIdent) -> list[AliasPublic]:
    """The project's aliases by name (404 if the project is not yours)."""
    return [AliasPublic.model_validate(a) for a in list_aliases(session, user, project_id)]
