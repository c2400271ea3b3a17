"""Projects: one task being solved, with up to five showcase videos from its evals.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1
    curl -H "$H" -X POST $API/projects -H 'Content-Type: application/json' -d '{"name": "look-at"}'
    curl -H "$H" $API/projects
    curl -H "$H" -X PATCH $API/projects/look-at -d '{"showcases": [{"eval_id": "dst_…"}]}' \\
         -H 'Content-Type: application/json'
    curl -H "$H" -X DELETE "$API/projects/look-at?force=true"
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.errors import ErrorBody
from flywheel.api.params import ProjectIdent
from flywheel.platform import access, projects
from flywheel.platform.schemas import ProjectCreate, ProjectPublic, ProjectUpdate

router = APIRouter(prefix="/projects", tags=["projects"])

CONFLICT = {409: {"model": ErrorBody, "description": "The name is taken, or a rule is broken."}}


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
def create_project(session: SessionDep, user: CurrentUser, body: ProjectCreate) -> ProjectPublic:
    """Create a project; names are unique per user."""
    return ProjectPublic.model_validate(projects.create_project(session, user, body))


@router.get("")
def list_projects(session: SessionDep, user: CurrentUser) -> list[ProjectPublic]:
    """Your projects, oldest first."""
    return [ProjectPublic.model_validate(p) for p in projects.list_projects(session, user)]


@router.get("/{project_id}")
def read_project(session: SessionDep, user: CurrentUser, project_id: ProjectIdent) -> ProjectPublic:
    """One project, by id or name."""
    return ProjectPublic.model_validate(access.project(session, user, project_id))


@router.patch("/{project_id}", responses=CONFLICT)
def update_project(
    session: SessionDep, user: CurrentUser, project_id: ProjectIdent, body: ProjectUpdate
) -> ProjectPublic:
    """Edit name, description or showcase videos (at most five; a sixth answers 409)."""
    return ProjectPublic.model_validate(projects.update_project(session, user, project_id, body))


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"model": ErrorBody, "description": "A job of the project is running (use `force`)."}},
)
def delete_project(
    session: SessionDep,
    user: CurrentUser,
    project_id: ProjectIdent,
    force: Annotated[bool, Query(description="Cancel the project's queued and running jobs.")] = False,
) -> None:
    """Delete a project with its experiments, iterations, assets and evals."""
    projects.delete_project(session, user, project_id, force=force)
