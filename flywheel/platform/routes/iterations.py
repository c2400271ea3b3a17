"""Iterations: numbered attempts inside an experiment (indexes never reused, even after deletion).

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1; J='Content-Type: application/json'
    curl -H "$H" -H "$J" -X POST $API/experiments/exp_…/iterations -d '{"notes": "first try"}'
    curl -H "$H" $API/experiments/exp_…/iterations
    curl -H "$H" $API/experiments/exp_…/iterations/0
    curl -H "$H" -H "$J" -X PATCH $API/iterations/itr_…/notes -d '{"notes": "reward hacked", "append": true}'
    curl -H "$H" -X DELETE $API/iterations/itr_…
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.params import INDEX_MAX, ExperimentId, IterationId
from flywheel.platform import iterations
from flywheel.platform.schemas import IterationCreate, IterationNote, IterationPublic

router = APIRouter(tags=["iterations"])


@router.post("/experiments/{experiment_id}/iterations", status_code=status.HTTP_201_CREATED)
def create_iteration(
    session: SessionDep, user: CurrentUser, experiment_id: ExperimentId, body: IterationCreate
) -> IterationPublic:
    """Create the experiment's next iteration; input assets may come from any of your experiments."""
    return IterationPublic.of(iterations.create_iteration(session, user, experiment_id, body))


@router.get("/experiments/{experiment_id}/iterations")
def list_iterations(session: SessionDep, user: CurrentUser, experiment_id: ExperimentId) -> list[IterationPublic]:
    """The experiment's iterations by index."""
    return [IterationPublic.of(i) for i in iterations.list_iterations(session, user, experiment_id)]


@router.get("/experiments/{experiment_id}/iterations/{index}")
def read_iteration_by_index(
    session: SessionDep,
    user: CurrentUser,
    experiment_id: ExperimentId,
    index: Annotated[int, Path(ge=0, le=INDEX_MAX, description="The iteration's index in the experiment.")],
) -> IterationPublic:
    """One iteration, by its experiment and index."""
    return IterationPublic.of(iterations.get_iteration(session, user, experiment_id, index))


@router.get("/iterations/{iteration_id}")
def read_iteration(session: SessionDep, user: CurrentUser, iteration_id: IterationId) -> IterationPublic:
    """One iteration, by id."""
    return IterationPublic.of(iterations.get_iteration(session, user, iteration_id))


@router.patch("/iterations/{iteration_id}/notes")
def note_iteration(
    session: SessionDep, user: CurrentUser, iteration_id: IterationId, body: IterationNote
) -> IterationPublic:
    """Replace the iteration's notes, or add to them with `append`."""
    return IterationPublic.of(iterations.note_iteration(session, user, iteration_id, body))


@router.delete("/iterations/{iteration_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_iteration(session: SessionDep, user: CurrentUser, iteration_id: IterationId) -> None:
    """Delete an iteration and its output assets; its index is never handed out again."""
    iterations.delete_iteration(session, user, iteration_id)
