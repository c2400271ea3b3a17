"""The dataset catalog: datasets registered in the store, their episodes mirrored in the database.

Every function takes ``(session, user, ...)``; the CLI, the API, the job runner and the demo call them.
A dataset's folder (``settings.resolved_dataset_dir()/<dataset id>``) is the source of truth: each
operation changes the folder first (crash-safe on its own), then brings the ``episodes`` table in step
with the folder's records. A mirror left stale by a crash between the two is repaired by ``sync``.
A folder created in a transaction that rolls back is removed; a deleted dataset's folder is removed
after its row's deletion has committed.

Example:
    >>> dataset_id, root = new_dataset_folder()  # doctest: +SKIP
    >>> ...  # a job writes episodes into root with create_dataset(root, ...)
    >>> register_folder(session, user, dataset_id=dataset_id, root=root, name="demos")  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import case, delete, event, func, insert, select
from sqlalchemy.orm import Session

from flywheel.datasets import edits
from flywheel.datasets.catalog_io import (
    check_same_features,
    copy_folder,
    default_export_path,
    detect_format,
    export_folder,
    finish_report,
    open_source,
    reading,
)
from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.format import INFO_PATH, SIDECAR_PATH, load_info, user_features
from flywheel.datasets.models import Dataset, Episode
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.records import EpisodeRecord
from flywheel.datasets.schemas import (
    EVAL_REFUSAL,
    CompactPublic,
    DatasetCreate,
    DatasetPublic,
    DatasetUpdate,
    EpisodeQuery,
    ExportPublic,
    ImportPublic,
    ProblemPublic,
    StatsPublic,
    VerifyPublic,
)
from flywheel.datasets.writer import create_dataset as create_folder
from flywheel.datasets.writer import open_for_append
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.platform import access
from flywheel.platform.models import User
from flywheel.settings import get_settings
from flywheel.store import new_id

#: The mirrored fields of an episode record (the Episode columns besides id and dataset_id).
MIRROR_FIELDS = ("episode_index", "episode_id", "chunk_id", "created_at", "total_frames", "start_frame",
                 "end_frame", "task", "success", "soft_deleted", "source", "skew_flagged", "max_skew_ms")
#: Default share of frames hidden by soft deletes and trims above which `compact_due` compacts a dataset.
COMPACT_DUE_FRACTION = 0.2
_NAME_LIMIT = 200
_REMOVE_ON_ROLLBACK = "flywheel.dataset_folders_created"
_REMOVE_ON_COMMIT = "flywheel.dataset_folders_deleted"


# -- folders and registration -----------------------------------------------------------------------


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
    """The folder of a registered dataset.

    Raises:
        Conflict: the dataset has no folder (registered without one, or the folder was removed).
    """
    root = Path(dataset.root_path) if dataset.root_path else None
    if root is None or not ((root / INFO_PATH).is_file() or (root / SIDECAR_PATH).is_file()):
        raise Conflict(f"dataset {dataset.name!r} ({dataset.id}) has no dataset folder at "
                       f"{dataset.root_path or '(none)'}",
                       hint="Its episodes are gone; delete it with `flywheel dataset delete` and create it again.")
    return root


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


def _new_folder(session: Session) -> tuple[str, Path]:
    """A fresh id and folder, removed again if the session's transaction rolls back."""
    dataset_id, root = new_dataset_folder()
    session.info.setdefault(_REMOVE_ON_ROLLBACK, []).append(root)
    return dataset_id, root


def _refuse_eval(dataset: Dataset, what: str) -> None:
    if dataset.is_eval:
        raise Conflict(f"cannot {what} {dataset.name!r} ({dataset.id}): {EVAL_REFUSAL}",
                       hint="Record or import into a plain dataset instead; jobs write evals.")


@event.listens_for(Session, "after_rollback")
def _remove_created(session: Session) -> None:
    session.info.pop(_REMOVE_ON_COMMIT, None)
    for root in session.info.pop(_REMOVE_ON_ROLLBACK, []):
        shutil.rmtree(root, ignore_errors=True)


@event.listens_for(Session, "after_commit")
def _remove_deleted(session: Session) -> None:
    session.info.pop(_REMOVE_ON_ROLLBACK, None)
    for root in session.info.pop(_REMOVE_ON_COMMIT, []):
        shutil.rmtree(root, ignore_errors=True)


# -- create, list, show, update, delete -------------------------------------------------------------


def create_dataset(session: Session, user: User, data: DatasetCreate) -> Dataset:
    """Create an empty dataset with its features, fps and robot type.

    Raises:
        Conflict: the name is taken, or provenance fields were given (evals are created by jobs).

    Example:
        >>> feats = {"action": {"dtype": "float32", "shape": [2]}}
        >>> create_dataset(session, user, DatasetCreate(name="demos", features=feats)).fps  # doctest: +SKIP
        50
    """
    if data.asks_for_eval:
        raise Conflict(f"cannot create an eval: {EVAL_REFUSAL}",
                       hint="Leave out the generated_by_* fields to create a plain dataset.")
    check_name_free(session, user, data.name)
    dataset_id, root = _new_folder(session)
    create_folder(root, features=data.feature_dicts(), fps=data.fps, robot_type=data.robot_type).close()
    return register_folder(session, user, dataset_id=dataset_id, root=root, name=data.name,
                           description=data.description)


def create_from_folder(session: Session, user: User, *, name: str, source: Path,
                       description: str = "") -> ImportPublic:
    """Create a dataset from a local folder ("upload"): a Flywheel folder is copied, a LeRobot v2.1 one imported.

    Raises:
        NotFound: no such folder.
        InvalidInput: the folder is neither (field ``source``), or a LeRobot feature Flywheel cannot hold.
        Conflict: the name is taken.

    Example:
        >>> imp = create_from_folder(session, user, name="pusht", source=Path("lerobot/pusht"))  # doctest: +SKIP
        >>> imp.episodes_added  # doctest: +SKIP
        206
    """
    check_name(name)
    check_name_free(session, user, name)
    source = Path(source)
    if not source.is_dir():
        raise NotFound("folder", source, hint="give a Flywheel or LeRobot v2.1 dataset folder")
    fmt = detect_format(source)
    if fmt not in ("flywheel", "lerobot"):
        raise InvalidInput(f"{source} is not a dataset folder", field="source",
                           allowed="a Flywheel or LeRobot v2.1 dataset folder")
    dataset_id, root = _new_folder(session)
    root.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "lerobot":
        from flywheel.datasets.lerobot_io import import_lerobot

        import_lerobot(source, root)
    else:
        DatasetReader(source)  # refuses a damaged or foreign folder before copying
        copy_folder(source, root)
        open_for_append(root).close()  # repairs what a copy of a live folder may hold
    dataset = register_folder(session, user, dataset_id=dataset_id, root=root, name=name, description=description)
    records = DatasetReader(root).records
    return ImportPublic(dataset=dataset_public(session, dataset), format=fmt, chunk_id=0 if records else None,
                        episodes_added=len(records), frames_added=sum(r.total_frames for r in records))


def import_dataset(session: Session, user: User, *, name: str, source: Path, fmt: str | None = None,
                   fps: int | None = None, topics: Sequence[str] = (), task: str = "", robot_type: str | None = None,
                   description: str = "") -> ImportPublic:
    """Create a dataset from an RLDS JSONL / TFRecord file, a rosbag2, or a dataset folder; report what was refused.

    Args:
        name: the new dataset's name.
        source: the file or folder.
        fmt: one of ``SOURCE_FORMATS``; detected from the path when None.
        fps: frame rate (rosbags; RLDS files without header or timestamps).
        topics: rosbag mappings ``TOPIC:FEATURE[:FIELD[:DTYPE]]``.
        task: task of rosbag episodes.
        robot_type: stored in info.json (default: the source's, else "unknown").

    Returns:
        The new dataset and the validation report (invalid episodes are skipped and listed).

    Example:
        >>> imp = import_dataset(session, user, name="bag", source=Path("run1"),
        ...                      topics=["/joint_states:observation.state:position"], fps=30)  # doctest: +SKIP
    """
    check_name(name)
    check_name_free(session, user, name)
    fmt = fmt or detect_format(Path(source))
    if fmt in ("flywheel", "lerobot"):
        return create_from_folder(session, user, name=name, source=Path(source), description=description)
    with reading(Path(source), fmt):
        src = open_source(Path(source), fmt, fps=fps, topics=topics, task=task)
        dataset_id, root = _new_folder(session)
        writer = create_folder(root, features=src.features, fps=src.fps, robot_type=robot_type or src.robot_type)
        with writer:
            frames = sum(writer.append_episode(ep, source=f"import:{fmt}").total_frames for ep in src.episodes)
            added = len(writer.saved)
    finish_report(src)
    dataset = register_folder(session, user, dataset_id=dataset_id, root=root, name=name, description=description)
    return ImportPublic(dataset=dataset_public(session, dataset), format=fmt, chunk_id=0 if added else None,
                        episodes_added=added, frames_added=frames, episodes_invalid=src.invalid, report=src.report)


def list_datasets(session: Session, user: User, *, evals: bool | None = None) -> list[Dataset]:
    """The user's datasets, oldest first; ``evals`` True lists only evals, False only plain datasets."""
    query = select(Dataset).where(Dataset.owner_id == user.id).order_by(Dataset.created_at, Dataset.id)
    if evals is True:
        query = query.where(Dataset.generated_by_iteration_id.is_not(None))
    elif evals is False:
        query = query.where(Dataset.generated_by_iteration_id.is_(None))
    return list(session.scalars(query))


def get_dataset(session: Session, user: User, ident: str) -> Dataset:
    """The user's dataset by id or name (NotFound for anyone else's)."""
    return access.dataset(session, user, ident)


def update_dataset(session: Session, user: User, ident: str, data: DatasetUpdate) -> Dataset:
    """Rename a dataset or change its description."""
    dataset = access.dataset(session, user, ident)
    if data.name is not None and data.name != dataset.name:
        check_name_free(session, user, data.name, exclude_id=dataset.id)
        dataset.name = data.name
    if data.description is not None:
        dataset.description = data.description
    session.flush()
    return dataset


def delete_dataset(session: Session, user: User, ident: str) -> Dataset:
    """Delete a dataset: its row (and episode rows) now, its folder once the deletion has committed.

    Iterations and experiments that used it lose the link; an eval's showcases go with it.
    """
    dataset = access.dataset(session, user, ident)
    if dataset.root_path:
        session.info.setdefault(_REMOVE_ON_COMMIT, []).append(Path(dataset.root_path))
    session.execute(delete(Episode).where(Episode.dataset_id == dataset.id))
    session.delete(dataset)
    session.flush()
    return dataset


def dataset_public(session: Session, dataset: Dataset) -> DatasetPublic:
    """A dataset with its episode counts from the mirror."""
    return datasets_public(session, [dataset])[0]


def datasets_public(session: Session, datasets: Sequence[Dataset]) -> list[DatasetPublic]:
    """Datasets with their episode counts, in one query."""
    visible = Episode.soft_deleted.is_(False)
    rows = session.execute(
        select(
            Episode.dataset_id,
            func.sum(case((visible, 1), else_=0)),
            func.sum(case((visible, 0), else_=1)),
            func.sum(case((visible, Episode.end_frame - Episode.start_frame), else_=0)),
            func.count(func.distinct(Episode.chunk_id)),
        ).where(Episode.dataset_id.in_([d.id for d in datasets])).group_by(Episode.dataset_id)
    ).all() if datasets else []
    counts = {r[0]: r[1:] for r in rows}
    out = []
    for d in datasets:
        episodes, deleted, frames, chunks = counts.get(d.id, (0, 0, 0, 0))
        out.append(DatasetPublic.model_validate({
            **{c.key: getattr(d, c.key) for c in Dataset.__table__.columns}, "is_eval": d.is_eval,
            "episodes": int(episodes or 0), "deleted_episodes": int(deleted or 0), "frames": int(frames or 0),
            "chunks": int(chunks or 0)}))
    return out


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
    root = dataset_root(dataset)
    info = load_info(root)
    dataset.fps = int(info["fps"])
    dataset.robot_type = str(info.get("robot_type") or "")
    dataset.features = user_features(info["features"])
    mirror(session, dataset, DatasetReader(root).records)
    return dataset


# -- episodes in: append, record --------------------------------------------------------------------


def append_episodes(session: Session, user: User, ident: str, episodes: Iterable[EpisodeArrays], *,
                    source: str = "import") -> list[EpisodeRecord]:
    """Append whole episodes as a new chunk (existing episode files are never rewritten) and mirror them.

    Raises:
        Conflict: the dataset is an eval, or another writer holds it.
        InvalidInput: an episode that does not match the features (named); episodes before it are kept.
    """
    dataset = access.dataset(session, user, ident)
    _refuse_eval(dataset, "append to")
    with open_for_append(dataset_root(dataset)) as writer:
        try:
            for ep in episodes:
                writer.append_episode(ep, source=source)
        finally:
            saved = list(writer.saved)
    _mirror_new(session, dataset, saved)
    return saved


def append_from(session: Session, user: User, ident: str, *, source: Path, fmt: str | None = None,
                fps: int | None = None, topics: Sequence[str] = (), task: str = "") -> ImportPublic:
    """Append the episodes of a folder or file (any ``SOURCE_FORMATS``) to a dataset as a new chunk.

    The source's features must equal the dataset's (the first difference is named) and, for RLDS and
    TFRecord, invalid episodes are skipped and listed in the report.

    Raises:
        Conflict: the dataset is an eval, or another writer holds it.
        InvalidInput: a features mismatch (``features.<key>``), an unknown format.

    Example:
        >>> append_from(session, user, "demos", source=Path("more.jsonl")).chunk_id  # doctest: +SKIP
        1
    """
    dataset = access.dataset(session, user, ident)
    _refuse_eval(dataset, "append to")
    root = dataset_root(dataset)
    staging = root.with_name(f".{root.name}.append-{new_id('stg')}")
    saved: list[EpisodeRecord] = []
    try:
        with reading(Path(source), fmt):
            src = open_source(Path(source), fmt, fps=fps or dataset.fps, topics=topics, task=task, staging=staging)
            check_same_features(DatasetReader(root).features, src.features)
            if src.fps != dataset.fps:
                raise InvalidInput(f"the source runs at {src.fps} fps, the dataset at {dataset.fps}", field="fps",
                                   allowed=dataset.fps)
            with open_for_append(root) as writer:
                chunk = writer.chunk_id
                try:
                    for ep in src.episodes:
                        writer.append_episode(ep, source=f"append:{src.format}")
                finally:
                    saved = list(writer.saved)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _mirror_new(session, dataset, saved)  # what was written before a failure is in the folder: mirror it
    finish_report(src)
    return ImportPublic(dataset=dataset_public(session, dataset), format=src.format,
                        chunk_id=chunk if saved else None, episodes_added=len(saved),
                        frames_added=sum(r.total_frames for r in saved), episodes_invalid=src.invalid,
                        report=src.report)


def record(session: Session, user: User, ident: str, source: Any, *, episodes: int, frames: int,
           task: str, realtime: bool = True, create: bool = False, fps: int | None = None,
           robot_type: str = "scripted") -> ImportPublic:
    """Record episodes from a live source (``sources.make_source``) at the dataset's fps, as a new chunk.

    Args:
        ident: the dataset; with ``create`` it is made (with the source's features) when it does not exist.
        source: a callable returning one frame per call, with ``features``, ``start_episode()`` and
            ``episode_over()`` (see ``flywheel.datasets.sources``).
        episodes: how many episodes.
        frames: the most frames per episode (the source may end one earlier).
        task: the task of the episodes.
        realtime: sample on the wall clock (skew measured and flagged); False runs on a virtual clock,
            as fast as the source goes.
        fps: frame rate of a dataset created here (default 50).

    Raises:
        Conflict: the dataset is an eval, or another writer holds it.
        InvalidInput: the source's features differ from the dataset's (named), bad counts.
    """
    from flywheel.datasets.recorder import Recorder

    for field, value in (("episodes", episodes), ("frames", frames)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise InvalidInput(f"must be an integer 1..1000000, got {value!r}", field=field)
    try:
        dataset = access.dataset(session, user, ident)
    except NotFound:
        if not create:
            raise
        dataset = create_dataset(session, user, DatasetCreate(name=ident, features=source.features,
                                                               fps=fps or 50, robot_type=robot_type))
    _refuse_eval(dataset, "record into")
    root = dataset_root(dataset)
    check_same_features(DatasetReader(root).features, source.features)
    clock = _VirtualClock()
    labels: dict[int, bool] = {}
    with open_for_append(root) as writer:
        chunk = writer.chunk_id
        rec = Recorder(writer, source) if realtime else Recorder(writer, source, clock=clock.now, sleep=clock.sleep)
        try:
            for _ in range(episodes):
                source.start_episode()
                saved = rec.record_episode(task=task, num_frames=frames, should_stop=source.episode_over)
                if getattr(source, "success", None) is not None:
                    labels[saved.episode_index] = bool(source.success)
        finally:
            saved_all = list(writer.saved)
    for index, success in labels.items():
        edits.set_success(root, index, success)
    records = DatasetReader(root).records
    _mirror_new(session, dataset, [records[r.episode_index] for r in saved_all])
    return ImportPublic(dataset=dataset_public(session, dataset), format="record", chunk_id=chunk,
                        episodes_added=len(saved_all), frames_added=sum(r.total_frames for r in saved_all))


class _VirtualClock:
    """A clock that jumps forward when slept on: recording on the schedule, without waiting."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds if seconds > 0 else 0.0005


def _mirror_new(session: Session, dataset: Dataset, records: Sequence[EpisodeRecord]) -> None:
    if records:
        session.execute(insert(Episode), [episode_row(dataset.id, r) for r in records])
        session.flush()


# -- metadata edits ---------------------------------------------------------------------------------


def trim(session: Session, user: User, ident: str, episode_index: int, *, start_frame: int,
         end_frame: int) -> Episode:
    """Show only frames ``start_frame..end_frame`` (end exclusive) of an episode; metadata only.

    Raises:
        NotFound: no such episode (the valid indexes are in the hint).
        InvalidInput: a range outside ``0 <= start < end <= total_frames`` (field ``start_frame/end_frame``).

    Example:
        >>> trim(session, user, "demos", 0, start_frame=5, end_frame=40).end_frame  # doctest: +SKIP
        40
    """
    dataset = access.dataset(session, user, ident)
    rec = edits.trim_episode(dataset_root(dataset), episode_index, start_frame=start_frame, end_frame=end_frame)
    update_rows(session, dataset, [rec])
    return _row(session, dataset, rec.episode_index)


def soft_delete(session: Session, user: User, ident: str, episode_indexes: Sequence[int]) -> list[Episode]:
    """Hide episodes from reads, queries and exports until undeleted or compacted; immediate, metadata only.

    Raises:
        NotFound: an index names no episode (nothing is changed).
    """
    dataset = access.dataset(session, user, ident)
    records = edits.soft_delete(dataset_root(dataset), list(episode_indexes))
    update_rows(session, dataset, records)
    return [_row(session, dataset, r.episode_index) for r in records]


def undelete(session: Session, user: User, ident: str, episode_indexes: Sequence[int]) -> list[Episode]:
    """Make soft-deleted episodes visible again (until compaction removes them for good)."""
    dataset = access.dataset(session, user, ident)
    records = edits.undelete(dataset_root(dataset), list(episode_indexes))
    update_rows(session, dataset, records)
    return [_row(session, dataset, r.episode_index) for r in records]


def set_success(session: Session, user: User, ident: str, episode_index: int, success: bool | None) -> Episode:
    """Label an episode a success, a failure, or unknown (None)."""
    dataset = access.dataset(session, user, ident)
    rec = edits.set_success(dataset_root(dataset), episode_index, success)
    update_rows(session, dataset, [rec])
    return _row(session, dataset, rec.episode_index)


def get_episode(session: Session, user: User, ident: str, episode_index: int) -> Episode:
    """One episode's mirrored record.

    Raises:
        NotFound: no such dataset of the user, or no such episode.
    """
    return _row(session, access.dataset(session, user, ident), episode_index)


def _row(session: Session, dataset: Dataset, episode_index: int) -> Episode:
    row = session.scalars(
        select(Episode).where(Episode.dataset_id == dataset.id, Episode.episode_index == episode_index)
    ).first()
    if row is None:
        count = session.scalar(select(func.count()).select_from(Episode).where(Episode.dataset_id == dataset.id))
        raise NotFound("episode", episode_index, hint=f"episodes of {dataset.name!r} are 0..{(count or 0) - 1}")
    return row


# -- query ------------------------------------------------------------------------------------------


def query_episodes(session: Session, user: User, ident: str, query: EpisodeQuery | None = None) -> list[Episode]:
    """Episodes of a dataset by time range, success, task, chunk and deleted flag, from the database mirror.

    Uses the ``(dataset_id, soft_deleted, created_at)`` index; results are in episode_index order.

    Example:
        >>> q = EpisodeQuery(success="yes", chunk_id=[1])
        >>> [e.episode_index for e in query_episodes(session, user, "demos", q)]  # doctest: +SKIP
        [3, 5]
    """
    dataset = access.dataset(session, user, ident)
    return list(session.scalars(episode_select(dataset.id, query or EpisodeQuery())))


def episode_select(dataset_id: str, q: EpisodeQuery) -> Any:
    """The SELECT statement of an episode query (for callers that page or count)."""
    stmt = select(Episode).where(Episode.dataset_id == dataset_id)
    if q.deleted != "any":
        stmt = stmt.where(Episode.soft_deleted.is_(q.deleted == "yes"))
    if q.created_after is not None:
        stmt = stmt.where(Episode.created_at >= q.created_after)
    if q.created_before is not None:
        stmt = stmt.where(Episode.created_at < q.created_before)
    if q.success == "unknown":
        stmt = stmt.where(Episode.success.is_(None))
    elif q.success is not None:
        stmt = stmt.where(Episode.success.is_(q.success == "yes"))
    if q.task:
        stmt = stmt.where(Episode.task.in_(q.task))
    if q.chunk_id:
        stmt = stmt.where(Episode.chunk_id.in_(q.chunk_id))
    return stmt.order_by(Episode.episode_index).limit(q.limit).offset(q.offset)


# -- compaction, verification, stats, export, render ------------------------------------------------


def compact(session: Session, user: User, ident: str) -> CompactPublic:
    """Hard delete: rewrite the dataset without soft-deleted episodes and with trims applied, then resync the mirror.

    Crash-safe: the old folder stays valid until the new one is complete and swapped in.

    Raises:
        Conflict: a writer holds the dataset.
    """
    dataset = access.dataset(session, user, ident)
    return _compact(session, dataset)


def _compact(session: Session, dataset: Dataset) -> CompactPublic:
    from flywheel.datasets.compact import compact as compact_folder

    root = dataset_root(dataset)
    report = compact_folder(root)
    mirror(session, dataset, DatasetReader(root).records)
    return CompactPublic(dataset_id=dataset.id, episodes_before=report.episodes_before,
                         episodes_after=report.episodes_after, frames_before=report.frames_before,
                         frames_after=report.frames_after, removed_episode_ids=report.removed_episode_ids,
                         index_map=report.index_map)


def hidden_fractions(session: Session, *, user: User | None = None) -> dict[str, float]:
    """Dataset id -> share of its stored frames hidden by soft deletes and trims (from the mirror)."""
    visible = case((Episode.soft_deleted.is_(False), Episode.end_frame - Episode.start_frame), else_=0)
    query = select(Episode.dataset_id, func.sum(Episode.total_frames), func.sum(visible)).group_by(Episode.dataset_id)
    if user is not None:
        query = query.join(Dataset, Dataset.id == Episode.dataset_id).where(Dataset.owner_id == user.id)
    return {ds: 1.0 - float(shown or 0) / float(total) for ds, total, shown in session.execute(query) if total}


def compact_due(session: Session, *, min_deleted_fraction: float = COMPACT_DUE_FRACTION,
                user: User | None = None) -> list[CompactPublic]:
    """Compact every dataset whose soft-deleted and trimmed-away frames reach ``min_deleted_fraction``.

    This is compaction as a periodic job: the job system (a later issue) schedules it; until then
    ``flywheel dataset compact --all-due`` runs it. A dataset busy with a writer is skipped this round.

    Args:
        min_deleted_fraction: the share of stored frames that must be hidden, in (0, 1].
        user: only this user's datasets (the CLI passes its user); None for every dataset.

    Returns:
        A report per compacted dataset.

    Example:
        >>> [r.dataset_id for r in compact_due(session, min_deleted_fraction=0.25)]  # doctest: +SKIP
        ['dst_3f9a1c2b7d4e']
    """
    if isinstance(min_deleted_fraction, bool) or not isinstance(min_deleted_fraction, int | float) or not (
            0 < min_deleted_fraction <= 1):
        raise InvalidInput(f"must be in (0, 1], got {min_deleted_fraction!r}", field="min_deleted_fraction",
                           allowed="0 < fraction <= 1")
    due = [ds for ds, hidden in hidden_fractions(session, user=user).items() if hidden >= min_deleted_fraction]
    reports = []
    for dataset_id in sorted(due):
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            continue
        try:
            reports.append(_compact(session, dataset))
        except Conflict:
            continue  # a writer holds it: next round
    return reports


def verify(session: Session, user: User, ident: str, *, check_videos: bool = True) -> VerifyPublic:
    """Read every episode in full and report the damaged ones by index (nothing is changed)."""
    from flywheel.datasets.verify import verify as verify_folder

    dataset = access.dataset(session, user, ident)
    report = verify_folder(dataset_root(dataset), check_videos=check_videos)
    return VerifyPublic(dataset_id=dataset.id, ok=report.ok, episodes_checked=report.episodes_checked,
                        damaged_episodes=report.damaged_episodes,
                        problems=[ProblemPublic(severity=p.severity, message=p.message, episode_index=p.episode_index,
                                                path=p.path) for p in report.problems])


def stats(session: Session, user: User, ident: str) -> StatsPublic:
    """Feature statistics (min/max/mean/std/count) over the visible frames, for normalisation."""
    import numpy as np

    from flywheel.datasets.stats import dataset_stats

    dataset = access.dataset(session, user, ident)
    reader = DatasetReader(dataset_root(dataset))
    visible = [r for r in reader.records if not r.soft_deleted and r.length > 0]
    per_feature = dataset_stats(reader) if visible else {}
    return StatsPublic(dataset_id=dataset.id, episodes=len(visible), frames=sum(r.length for r in visible),
                       features={k: {s: np.asarray(v).tolist() for s, v in st.items()}
                                 for k, st in per_feature.items()})


def export(session: Session, user: User, ident: str, *, fmt: str, out: Path | None = None,
           origin: str | None = None) -> ExportPublic:
    """Export a dataset (trims and soft deletes applied) as LeRobot v2.1, RLDS JSONL or TFRecord, with a manifest.

    Args:
        fmt: one of ``EXPORT_FORMATS``.
        out: the folder (LeRobot) or file to write; default under ``<home>/exports/<dataset id>/``.
        origin: the origin tag of the manifest (default the dataset's name).

    Raises:
        InvalidInput: an unknown format (the allowed ones listed).
        Conflict: ``out`` exists and is not empty (LeRobot).

    Example:
        >>> export(session, user, "demos", fmt="rlds-jsonl", out=Path("demos.jsonl")).episodes  # doctest: +SKIP
        5
    """
    from flywheel.datasets.export_manifest import manifest_path
    from flywheel.datasets.schemas import EXPORT_FORMATS

    dataset = access.dataset(session, user, ident)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}", field="format", allowed=list(EXPORT_FORMATS))
    root = dataset_root(dataset)
    target = Path(out) if out is not None else default_export_path(
        get_settings().home.absolute() / "exports" / dataset.id, dataset.name, fmt)
    target.parent.mkdir(parents=True, exist_ok=True)
    episodes, frames, manifest = export_folder(root, target, fmt, origin=origin or dataset.name)
    return ExportPublic(dataset_id=dataset.id, format=fmt, path=str(target.absolute()),
                        manifest_path=str(manifest_path(target).absolute()), episodes=episodes, frames=frames,
                        manifest=manifest.to_dict())


def render(session: Session, user: User, ident: str, episode_index: int, *, out: Path, key: str | None = None,
           fmt: str | None = None, max_seconds: float = 10.0, max_width: int | None = 320) -> tuple[Path, int]:
    """Render an episode's camera feature (trim applied) to a short mp4 or GIF clip.

    Args:
        out: the clip file; its suffix gives the format unless ``fmt`` is set.
        key: the camera feature (default the first one).

    Returns:
        The clip path and its number of frames.

    Raises:
        InvalidInput: the dataset has no such camera feature (the camera features listed), a bad format.
        NotFound: no such episode.
    """
    from flywheel.datasets.schemas import RENDER_FORMATS
    from flywheel.datasets.video import render_episode

    dataset = access.dataset(session, user, ident)
    reader = DatasetReader(dataset_root(dataset))
    cameras = reader.video_keys
    key = key or (cameras[0] if cameras else None)
    if key is None or key not in cameras:
        raise InvalidInput(f"{dataset.name!r} has no camera feature {key or ''}".rstrip(), field="key",
                           allowed=cameras or "none: this dataset has no camera features")
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in RENDER_FORMATS:
        raise InvalidInput(f"unknown clip format {fmt!r}", field="format", allowed=list(RENDER_FORMATS))
    rec = reader.record(episode_index)
    if rec.length <= 0:
        raise InvalidInput(f"episode {episode_index} has no visible frames", field="episode_index")
    frames = reader.read_video(rec.episode_index, key)[rec.start_frame:rec.end_frame]
    out.parent.mkdir(parents=True, exist_ok=True)
    n = render_episode(frames, out, reader.fps, fmt=fmt, max_seconds=max_seconds, max_width=max_width)  # type: ignore[arg-type]
    return out, n
