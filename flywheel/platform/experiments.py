"""Experiments: trees of approaches inside a project, with forks from a chosen iteration."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.platform import access
from flywheel.platform.assets import link_asset, release_blobs_after_commit
from flywheel.platform.models import Asset, Experiment, Iteration, User
from flywheel.platform.schemas import ExperimentCreate, ExperimentFork, ExperimentUpdate, TreeNode
from flywheel.platform.templates import check_config_keys, get_template
from flywheel.store import new_id


def create_experiment(session: Session, user: User, data: ExperimentCreate) -> Experiment:
    """Create an experiment, as a root or as a child of another experiment of the same project.

    Example:
        >>> create_experiment(session, user, ExperimentCreate(project_id="look-at", name="ppo"))  # doctest: +SKIP
    """
    project = access.project(session, user, data.project_id)
    if data.parent_id is not None:
        _check_parent(session, user, project.id, data.parent_id, moving=None)
    if data.template_id is not None:
        check_config_keys(get_template(session, data.template_id), data.template_config)
    elif data.template_config:
        raise InvalidInput(
            "a template config needs a template", field="template_config", allowed="{} without template_id"
        )
    experiment = Experiment(
        id=new_id("exp"),
        project_id=project.id,
        parent_id=data.parent_id,
        name=data.name,
        description=data.description,
        template_id=data.template_id,
        template_config=dict(data.template_config),
        git_repo=data.git_repo,
        git_commit=data.git_commit,
    )
    experiment.datasets = [access.dataset(session, user, d) for d in dict.fromkeys(data.dataset_ids)]
    session.add(experiment)
    session.flush()
    return experiment


def list_experiments(session: Session, user: User, project_ident: str) -> list[Experiment]:
    """The experiments of a project, oldest first."""
    project = access.project(session, user, project_ident)
    return list(
        session.scalars(
            select(Experiment).where(Experiment.project_id == project.id).order_by(Experiment.created_at, Experiment.id)
        )
    )


def update_experiment(session: Session, user: User, ident: str, data: ExperimentUpdate) -> Experiment:
    """Edit an experiment; moving it under a new parent refuses cycles and other projects' experiments."""
    experiment = access.experiment(session, user, ident)
    if data.make_root and data.parent_id is not None:
        raise InvalidInput("give either parent_id or make_root, not both", field="parent_id")
    if data.parent_id is not None:
        _check_parent(session, user, experiment.project_id, data.parent_id, moving=experiment)
        experiment.parent_id = data.parent_id
    if data.make_root:
        experiment.parent_id = None
    if data.template_config is not None:
        if experiment.template_id is None:
            raise InvalidInput("this experiment has no template", field="template_config")
        check_config_keys(get_template(session, experiment.template_id), data.template_config)
        experiment.template_config = dict(data.template_config)
    for field in ("name", "description", "git_repo", "git_commit"):
        value = getattr(data, field)
        if value is not None:
            setattr(experiment, field, value)
    session.flush()
    return experiment


def link_dataset(session: Session, user: User, ident: str, dataset_ident: str) -> Experiment:
    """Link an input dataset to an experiment (idempotent)."""
    experiment = access.experiment(session, user, ident)
    dataset = access.dataset(session, user, dataset_ident)
    if dataset not in experiment.datasets:
        experiment.datasets.append(dataset)
    session.flush()
    return experiment


def unlink_dataset(session: Session, user: User, ident: str, dataset_ident: str) -> Experiment:
    """Unlink an input dataset from an experiment."""
    experiment = access.experiment(session, user, ident)
    dataset = access.dataset(session, user, dataset_ident)
    if dataset not in experiment.datasets:
        raise NotFound("dataset link", f"{dataset.id} on {experiment.id}")
    experiment.datasets.remove(dataset)
    session.flush()
    return experiment


def fork_experiment(session: Session, user: User, ident: str, data: ExperimentFork) -> Experiment:
    """Fork an experiment from one of its iterations.

    The fork is a new node (beside the source unless a parent is given) that copies the description,
    template and config (with the chosen iteration's overrides applied), links the same datasets, and
    links the experiment's own assets and the chosen iteration's outputs by reference (same blob, no copy).
    It starts at iteration 0; the source's children are not forked.
    """
    source = access.experiment(session, user, ident)
    chosen = _fork_point(session, source, data.iteration_index)
    parent_id = source.parent_id
    if data.parent_id is not None:
        _check_parent(session, user, source.project_id, data.parent_id, moving=None)
        parent_id = data.parent_id
    config = dict(source.template_config)
    if chosen is not None:
        config.update(chosen.config_overrides)
    fork = Experiment(
        id=new_id("exp"),
        project_id=source.project_id,
        parent_id=parent_id,
        forked_from_id=source.id,
        forked_from_iteration_id=chosen.id if chosen else None,
        template_id=source.template_id,
        template_config=config,
        name=data.name,
        description=source.description,
        git_repo=source.git_repo,
        git_commit=source.git_commit,
    )
    fork.datasets = list(source.datasets)
    session.add(fork)
    session.flush()
    shared = select(Asset).where(Asset.experiment_id == source.id, Asset.iteration_id.is_(None))
    if chosen is not None:
        shared = select(Asset).where(
            Asset.experiment_id == source.id,
            (Asset.iteration_id.is_(None)) | (Asset.iteration_id == chosen.id),
        )
    for asset in session.scalars(shared.order_by(Asset.created_at, Asset.id)).all():
        link_asset(session, user, asset.id, experiment_id=fork.id)
    return fork


def delete_experiment(session: Session, user: User, ident: str, *, cascade: bool = False) -> list[str]:
    """Delete an experiment; its children move up to its parent, or with `cascade` go too.

    Returns the ids of the experiments deleted.
    """
    experiment = access.experiment(session, user, ident)
    doomed = _subtree_ids(session, experiment.id) if cascade else [experiment.id]
    if not cascade:
        session.execute(
            update(Experiment).where(Experiment.parent_id == experiment.id).values(parent_id=experiment.parent_id)
        )
    release_blobs_after_commit(
        session, session.scalars(select(Asset.blob_hash).where(Asset.experiment_id.in_(doomed))).all()
    )
    for node_id in reversed(doomed):  # leaves first
        node = session.get(Experiment, node_id)
        if node is not None:
            session.delete(node)
    session.flush()
    session.expire_all()
    return doomed


def tree(session: Session, user: User, project_ident: str) -> list[TreeNode]:
    """The project's experiment trees (one per root), children in creation order."""
    experiments = list_experiments(session, user, project_ident)
    ids = [e.id for e in experiments]
    iteration_counts = dict(
        session.execute(
            select(Iteration.experiment_id, func.count())
            .where(Iteration.experiment_id.in_(ids))
            .group_by(Iteration.experiment_id)
        ).all()
    )
    asset_counts = dict(
        session.execute(
            select(Asset.experiment_id, func.count()).where(Asset.experiment_id.in_(ids)).group_by(Asset.experiment_id)
        ).all()
    )
    fork_points = dict(
        session.execute(
            select(Iteration.id, Iteration.index).where(
                Iteration.id.in_([e.forked_from_iteration_id for e in experiments if e.forked_from_iteration_id])
            )
        ).all()
    )

    def node(e: Experiment) -> TreeNode:
        return TreeNode(
            id=e.id,
            name=e.name,
            forked_from_id=e.forked_from_id,
            forked_from_iteration_index=fork_points.get(e.forked_from_iteration_id or ""),
            iterations=iteration_counts.get(e.id, 0),
            assets=asset_counts.get(e.id, 0),
            children=[node(c) for c in experiments if c.parent_id == e.id],
        )

    return [node(e) for e in experiments if e.parent_id is None]


def _fork_point(session: Session, source: Experiment, index: int | None) -> Iteration | None:
    query = select(Iteration).where(Iteration.experiment_id == source.id)
    if index is None:
        return session.scalars(query.order_by(Iteration.index.desc())).first()
    chosen = session.scalars(query.where(Iteration.index == index)).first()
    if chosen is None:
        existing = session.scalars(
            select(Iteration.index).where(Iteration.experiment_id == source.id).order_by(Iteration.index)
        ).all()
        raise InvalidInput(
            f"experiment {source.id} has no iteration {index}", field="iteration_index", allowed=list(existing)
        )
    return chosen


def _check_parent(session: Session, user: User, project_id: str, parent_id: str, *, moving: Experiment | None) -> None:
    parent = access.experiment(session, user, parent_id)
    if parent.project_id != project_id:
        raise Conflict(
            f"experiment {parent_id} belongs to another project; a parent must be in the same project",
            hint="Fork across projects is not supported; create the experiment in that project instead.",
        )
    if moving is not None and (parent.id == moving.id or parent.id in _subtree_ids(session, moving.id)):
        raise Conflict(
            f"moving {moving.id} under {parent_id} would make a cycle", hint="Pick a parent outside its subtree."
        )


def _subtree_ids(session: Session, root_id: str) -> list[str]:
    """`root_id` and all its descendants, parents before children."""
    order = [root_id]
    frontier = [root_id]
    while frontier:
        frontier = list(session.scalars(select(Experiment.id).where(Experiment.parent_id.in_(frontier))))
        order.extend(frontier)
    return order
