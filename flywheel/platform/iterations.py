"""Iterations: numbered attempts inside an experiment. Indexes are sequential and never reused."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput, NotFound
from flywheel.platform import access
from flywheel.platform.assets import release_blobs_after_commit
from flywheel.platform.models import Asset, Iteration, User
from flywheel.platform.schemas import IterationCreate, IterationNote
from flywheel.platform.templates import check_config_keys, get_template
from flywheel.store import new_id


def create_iteration(session: Session, user: User, experiment_ident: str, data: IterationCreate) -> Iteration:
    """Create the experiment's next iteration. Input assets may come from any of the user's experiments.

    The experiment row is locked while its counter advances, so two concurrent creations get two indexes.

    Example:
        >>> create_iteration(session, user, exp.id, IterationCreate(notes="first try")).index  # doctest: +SKIP
        0
    """
    experiment = access.experiment(session, user, experiment_ident, for_update=True)
    if data.config_overrides:
        if experiment.template_id is None:
            raise InvalidInput("config overrides need an experiment with a template", field="config_overrides")
        check_config_keys(
            get_template(session, experiment.template_id), data.config_overrides, field="config_overrides"
        )
    iteration = Iteration(
        id=new_id("itr"),
        experiment_id=experiment.id,
        index=experiment.next_iteration_index,
        notes=data.notes,
        config_overrides=dict(data.config_overrides),
    )
    iteration.input_datasets = [access.dataset(session, user, d) for d in dict.fromkeys(data.input_dataset_ids)]
    iteration.input_assets = [access.asset(session, user, a) for a in dict.fromkeys(data.input_asset_ids)]
    experiment.next_iteration_index += 1
    session.add(iteration)
    session.flush()
    return iteration


def list_iterations(session: Session, user: User, experiment_ident: str) -> list[Iteration]:
    """The experiment's iterations by index."""
    experiment = access.experiment(session, user, experiment_ident)
    return list(
        session.scalars(select(Iteration).where(Iteration.experiment_id == experiment.id).order_by(Iteration.index))
    )


def get_iteration(session: Session, user: User, ident: str, index: int | None = None) -> Iteration:
    """An iteration by id, or by experiment id and index."""
    if index is None:
        return access.iteration(session, user, ident)
    experiment = access.experiment(session, user, ident)
    found = session.scalars(
        select(Iteration).where(Iteration.experiment_id == experiment.id, Iteration.index == index)
    ).first()
    if found is None:
        raise NotFound("iteration", f"{experiment.id}#{index}")
    return found


def note_iteration(session: Session, user: User, ident: str, data: IterationNote) -> Iteration:
    """Replace or extend an iteration's notes."""
    iteration = access.iteration(session, user, ident)
    iteration.notes = f"{iteration.notes}\n{data.notes}".strip("\n") if data.append else data.notes
    session.flush()
    return iteration


def delete_iteration(session: Session, user: User, ident: str) -> None:
    """Delete an iteration and its outputs. Its index is never handed out again."""
    iteration = access.iteration(session, user, ident)
    release_blobs_after_commit(
        session, session.scalars(select(Asset.blob_hash).where(Asset.iteration_id == iteration.id)).all()
    )
    session.delete(iteration)
    session.flush()
