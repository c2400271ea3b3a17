"""The dataset catalog: datasets registered in the store, their episodes mirrored in the database.

Every function takes ``(session, user, ...)``; the CLI, the API, the job runner and the demo call them.
A dataset's folder (``settings.resolved_dataset_dir()/<dataset id>``) is the source of truth: each
operation changes the folder first (crash-safe on its own), then brings the ``episodes`` table in step
with the folder's records. A mirror left stale by a crash between the two is repaired by ``sync``.

Example:
    >>> dataset_id, root = new_dataset_folder()  # doctest: +SKIP
    >>> ...  # a job writes episodes into root with create_dataset(root, ...)
    >>> register_folder(session, user, dataset_id=dataset_id, root=root, name="demos")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from flywheel.datasets.format import load_info, user_features
from flywheel.datasets.models import Dataset, Episode
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.records import EpisodeRecord
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.platform import access
from flywheel.platform.models import User
from flywheel.settings import get_settings
from flywheel.store import new_id

#: The mirrored fields of an episode record (the Episode columns besides id and dataset_id).
MIRROR_FIELDS = ("episode_index", "episode_id", "chunk_id", "created_at", "total_frames", "start_frame",
                 "end_frame", "task", "success", "soft_deleted", "source", "skew_flagged", "max_skew_ms")
_NAME_LIMIT = 200


def new_dataset_folder() -> tuple[str, Path]:
    """A fresh dataset id and the folder its episodes go to (not created yet).

    Example:
        >>> dataset_id, root = new_dataset_folder()  # doctest: +SKIP
        >>> root.name == dataset_id  # doctest: +SKIP
        True
    """
    dataset_id = new_id("dst")
    return dataset_id, get_settings().resolved_dataset_dir() / dataset_id


def dataset_root(dataset: Dataset) -> Path:
    """The folder of a registered dataset."""
    return Path(dataset.root_path)


def check_name(name: object, *, field: str = "name") -> str:
    """A dataset name: 1-200 characters, no control characters or slashes.

    Raises:
        InvalidInput: naming the field.
    """
    if not isinstance(name, str) or not 1 <= len(name) <= _NAME_LIMIT:
        raise InvalidInput(f"must be 1-{_NAME_LIMIT} characters", field=field)
    if any(ord(ch) < 32 or ch in "/\\" for ch in name):
        raise InvalidInput("must not contain control characters (tabs, newlines) or slashes", field=field)
    return name


def check_name_free(session: Session, user: User, name: str, *, exclude_id: str | None = None) -> None:
    """Refuse a name the user gives another dataset already.

    Raises:
        Conflict: the name is taken.
    """
    query = select(Dataset.id).where(Dataset.owner_id == user.id, Dataset.name == name)
    if exclude_id is not None:
        query = query.where(Dataset.id != exclude_id)
    if session.scalars(query).first() is not None:
        raise Conflict(f"you already have a dataset named {name!r}", hint="Pick another name.")


def register_folder(session: Session, user: User, *, dataset_id: str, root: Path, name: str,
                    description: str = "") -> Dataset:
    """Register a dataset folder already written (by a job, an import or a copy) and mirror its episodes.

    Args:
        session: the database session (the caller commits).
        user: the owner.
        dataset_id: the id from ``new_dataset_folder``.
        root: the folder holding the dataset (``meta/info.json`` and the sidecar log).
        name: unique among the user's datasets.
        description: free text.

    Raises:
        InvalidInput: a bad name or id.
        Conflict: the name or the id is taken.
        NotFound: the folder holds no dataset.

    Example:
        >>> dataset_id, root = new_dataset_folder()  # doctest: +SKIP
        >>> with create_dataset(root, features=feats) as w: ...  # doctest: +SKIP
        >>> register_folder(session, user, dataset_id=dataset_id, root=root, name="demos").fps  # doctest: +SKIP
        50
    """
    return _register(session, user, dataset_id=dataset_id, root=root, name=name, description=description)


def register_eval(session: Session, user: User, *, dataset_id: str, root: Path, name: str, experiment_id: str,
                  iteration_id: str, job_id: str | None = None, description: str = "") -> Dataset:
    """Register a folder a job wrote as an eval of an iteration, with its provenance, and mirror its episodes.

    Args:
        dataset_id: the id from ``new_dataset_folder``.
        root: the folder the job wrote.
        name: unique among the user's datasets (e.g. ``"<experiment>-it3-eval"``).
        experiment_id: the experiment the job ran in (the user's).
        iteration_id: the iteration the job produced; it must belong to that experiment.
        job_id: the job, if known; it must belong to the user and the experiment.
        description: free text.

    Raises:
        NotFound: the experiment, iteration or job is not the user's, or the folder holds no dataset.
        InvalidInput: the iteration or job belongs to another experiment; a bad name.
        Conflict: the name or id is taken.

    Example:
        >>> ev = register_eval(session, user, dataset_id=did, root=root, name="ppo-it0-eval",
        ...                    experiment_id=exp.id, iteration_id=it.id, job_id=job.id)  # doctest: +SKIP
        >>> ev.is_eval  # doctest: +SKIP
        True
    """
    experiment = access.experiment(session, user, experiment_id)
    iteration = access.iteration(session, user, iteration_id)
    if iteration.experiment_id != experiment.id:
        raise InvalidInput(f"iteration {iteration_id} belongs to another experiment", field="iteration_id",
                           allowed=f"iterations of experiment {experiment.id}")
    if job_id is not None:
        job = session.get(Job, job_id)
        if job is None or job.owner_id != user.id:
            raise NotFound("job", job_id)
        if job.experiment_id != experiment.id:
            raise InvalidInput(f"job {job_id} ran in another experiment", field="job_id",
                               allowed=f"jobs of experiment {experiment.id}")
    return _register(session, user, dataset_id=dataset_id, root=root, name=name, description=description,
                     provenance=(experiment.id, iteration.id, job_id))


def _register(session: Session, user: User, *, dataset_id: str, root: Path, name: str, description: str,
              provenance: tuple[str, str, str | None] | None = None) -> Dataset:
    check_name(name)
    if not isinstance(dataset_id, str) or not dataset_id.startswith("dst_") or len(dataset_id) > 32:
        raise InvalidInput(f"must be an id from new_dataset_folder(), got {dataset_id!r}", field="dataset_id")
    if not isinstance(description, str):
        raise InvalidInput("must be a string", field="description")
    check_name_free(session, user, name)
    if session.get(Dataset, dataset_id) is not None:
        raise Conflict(f"dataset id {dataset_id} is registered already",
                       hint="Take a fresh one with new_dataset_folder().")
    root = Path(root).absolute()
    reader = DatasetReader(root)
    experiment_id, iteration_id, job_id = provenance or (None, None, None)
    dataset = Dataset(
        id=dataset_id, owner_id=user.id, name=name, description=description, root_path=str(root),
        robot_type=str(reader.info.get("robot_type") or ""), fps=reader.fps, features=reader.features,
        generated_by_experiment_id=experiment_id, generated_by_iteration_id=iteration_id,
        generated_by_job_id=job_id,
    )
    session.add(dataset)
    session.flush()
    mirror(session, dataset, reader.records)
    return dataset


# -- the episode mirror -----------------------------------------------------------------------------


def episode_row(dataset_id: str, record: EpisodeRecord) -> dict[str, Any]:
    """The Episode columns of one record."""
    return {"dataset_id": dataset_id, **{f: getattr(record, f) for f in MIRROR_FIELDS}}


def mirror(session: Session, dataset: Dataset, records: Sequence[EpisodeRecord]) -> int:
    """Replace the dataset's Episode rows by the folder's records (one bulk insert). Returns the row count."""
    session.execute(delete(Episode).where(Episode.dataset_id == dataset.id))
    if records:
        session.execute(insert(Episode), [episode_row(dataset.id, r) for r in records])
    session.flush()
    return len(records)


def update_rows(session: Session, dataset: Dataset, records: Sequence[EpisodeRecord]) -> None:
    """Bring the rows of a few edited records in step (trim, soft delete, undelete, success)."""
    for rec in records:
        row = session.scalars(
            select(Episode).where(Episode.dataset_id == dataset.id, Episode.episode_index == rec.episode_index)
        ).first()
        if row is None:
            session.add(Episode(**episode_row(dataset.id, rec)))
            continue
        for f in MIRROR_FIELDS:
            setattr(row, f, getattr(rec, f))
    session.flush()


def sync(session: Session, user: User, ident: str) -> Dataset:
    """Rebuild the episode mirror of a dataset from its folder (after a crash, or a write outside Flywheel).

    Also refreshes fps, robot_type and features from ``meta/info.json``.

    Example:
        >>> sync(session, user, "demos").name  # doctest: +SKIP
        'demos'
    """
    dataset = access.dataset(session, user, ident)
    reader = DatasetReader(dataset_root(dataset))
    info = load_info(dataset_root(dataset))
    dataset.fps = int(info["fps"])
    dataset.robot_type = str(info.get("robot_type") or "")
    dataset.features = user_features(info["features"])
    mirror(session, dataset, reader.records)
    return dataset
