"""Ownership in one place: fetch an object only if the user owns it, else NotFound (never a hint it exists)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flywheel.datasets.models import Dataset
from flywheel.errors import NotFound
from flywheel.platform.models import Asset, Experiment, Iteration, Project, User


def project(session: Session, user: User, ident: str) -> Project:
    """The user's project by id or by name."""
    found = session.scalars(
        select(Project).where(Project.owner_id == user.id, or_(Project.id == ident, Project.name == ident))
    ).first()
    if found is None:
        raise NotFound("project", ident, hint="`flywheel project list` shows your projects.")
    return found


def experiment(session: Session, user: User, ident: str, *, for_update: bool = False) -> Experiment:
    """The user's experiment by id."""
    query = (
        select(Experiment)
        .join(Project, Project.id == Experiment.project_id)
        .where(Experiment.id == ident, Project.owner_id == user.id)
    )
    if for_update:
        query = query.with_for_update(of=Experiment)
    found = session.scalars(query).first()
    if found is None:
        raise NotFound("experiment", ident, hint="`flywheel experiment list <project>` shows them.")
    return found


def iteration(session: Session, user: User, ident: str) -> Iteration:
    """The user's iteration by id."""
    found = session.scalars(
        select(Iteration)
        .join(Experiment, Experiment.id == Iteration.experiment_id)
        .join(Project, Project.id == Experiment.project_id)
        .where(Iteration.id == ident, Project.owner_id == user.id)
    ).first()
    if found is None:
        raise NotFound("iteration", ident, hint="`flywheel iteration list <experiment>` shows them.")
    return found


def asset(session: Session, user: User, ident: str) -> Asset:
    """The user's asset by id."""
    found = session.scalars(
        select(Asset)
        .join(Experiment, Experiment.id == Asset.experiment_id)
        .join(Project, Project.id == Experiment.project_id)
        .where(Asset.id == ident, Project.owner_id == user.id)
    ).first()
    if found is None:
        raise NotFound("asset", ident, hint="`flywheel asset list <experiment>` shows them.")
    return found


def dataset(session: Session, user: User, ident: str) -> Dataset:
    """The user's dataset (or eval) by id or name."""
    found = session.scalars(
        select(Dataset).where(Dataset.owner_id == user.id, or_(Dataset.id == ident, Dataset.name == ident))
    ).first()
    if found is None:
        raise NotFound("dataset", ident, hint="`flywheel dataset list` shows your datasets and evals.")
    return found
