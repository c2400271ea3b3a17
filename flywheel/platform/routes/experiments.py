"""Experiments: trees of approaches inside a project, forks from a chosen iteration, linked datasets.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1; J='Content-Type: application/json'
    curl -H "$H" -H "$J" -X POST $API/experiments -d '{"project_id": "look-at", "name": "ppo"}'
    curl -H "$H" -H "$J" -X POST $API/experiments -d '{"project_id": "look-at", "name": "ppo-lr", "parent_id": "exp_…"}'
    curl -H "$H" -H "$J" -X POST $API/experiments/exp_…/fork -d '{"name": "ppo-b", "iteration_index": 2}'
    curl -H "$H" -X PUT $API/experiments/exp_…/datasets/dst_…
    curl -H "$H" $API/projects/look-at/tree
    curl -H "$H" -X DELETE "$API/experiments/exp_…?cascade=true"
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.errors import ErrorBody
from flywheel.api.params import DatasetIdent, ExperimentId, ProjectIdent
from flywheel.platform import access, experiments
from flywheel.platform.schemas import (
    ExperimentCreate,
    ExperimentFork,
    ExperimentPublic,
    ExperimentUpdate,
    TreeNode,
)

router = APIRouter(tags=["experiments"])

TREE_CONFLICT = {409: {"model": ErrorBody, "description": "The parent is in another project, or would make a cycle."}}


@router.post("/experiments", status_code=status.HTTP_201_CREATED, responses=TREE_CONFLICT)
def create_experiment(session: SessionDep, user: CurrentUser, body: ExperimentCreate) -> ExperimentPublic:
    """Create an experiment, as a root (no `parent_id`) or as a child of one of the same project."""
    return ExperimentPublic.of(experiments.create_experiment(session, user, body))


@router.get("/projects/{project_id}/experiments")
def list_experiments(session: SessionDep, user: CurrentUser, project_id: ProjectIdent) -> list[ExperimentPublic]:
    """The experiments of a project, oldest first."""
    return [ExperimentPublic.of(e) for e in experiments.list_experiments(session, user, project_id)]


@router.get("/projects/{project_id}/tree")
def read_tree(session: SessionDep, user: CurrentUser, project_id: ProjectIdent) -> list[TreeNode]:
    """The project's experiment trees, one per root, children in creation order."""
    return experiments.tree(session, user, project_id)


@router.get("/experiments/{experiment_id}")
def read_experiment(session: SessionDep, user: CurrentUser, experiment_id: ExperimentId) -> ExperimentPublic:
    """One experiment."""
    return ExperimentPublic.of(access.experiment(session, user, experiment_id))


@router.patch("/experiments/{experiment_id}", responses=TREE_CONFLICT)
def update_experiment(
    session: SessionDep, user: CurrentUser, experiment_id: ExperimentId, body: ExperimentUpdate
) -> ExperimentPublic:
    """Edit an experiment, or move it in its tree (`parent_id`, or `make_root`)."""
    return ExperimentPublic.of(experiments.update_experiment(session, user, experiment_id, body))


@router.post("/experiments/{experiment_id}/fork", status_code=status.HTTP_201_CREATED, responses=TREE_CONFLICT)
def fork_experiment(
    session: SessionDep, user: CurrentUser, experiment_id: ExperimentId, body: ExperimentFork
) -> ExperimentPublic:
    """Fork from one of its iterations (default the latest): same datasets, assets linked by reference."""
    return ExperimentPublic.of(experiments.fork_experiment(session, user, experiment_id, body))


@router.put("/experiments/{experiment_id}/datasets/{dataset_id}")
def link_dataset(
    session: SessionDep, user: CurrentUser, experiment_id: ExperimentId, dataset_id: DatasetIdent
) -> ExperimentPublic:
    """Link an input dataset to the experiment (idempotent)."""
    return ExperimentPublic.of(experiments.link_dataset(session, user, experiment_id, dataset_id))


@router.delete("/experiments/{experiment_id}/datasets/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def unlink_dataset(
    session: SessionDep, user: CurrentUser, experiment_id: ExperimentId, dataset_id: DatasetIdent
) -> None:
    """Unlink an input dataset (404 if it was not linked)."""
    experiments.unlink_dataset(session, user, experiment_id, dataset_id)


@router.delete("/experiments/{experiment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_experiment(
    session: SessionDep,
    user: CurrentUser,
    experiment_id: ExperimentId,
    cascade: Annotated[
        bool, Query(description="Delete its whole subtree; otherwise its children move up to its parent.")
    ] = False,
) -> None:
    """Delete an experiment with its iterations and assets (blobs go once nothing references them)."""
    experiments.delete_experiment(session, user, experiment_id, cascade=cascade)
