"""Creating a dataset folder and writing episodes to it, crash-safe.

Recording: ``add_frame`` checks a frame (dtype, shape, finite values) and copies it into the episode's
buffer, one preallocated array per column that doubles when full; nothing is written yet.

Saving an episode (``save_episode``/``append_episode``): its mp4 files are written (fsynced by
``encode_video``), its arrow table is built, and the table (an Arrow IPC stream) and its record are
appended to the pending log (``pending.py``); from then on a ``kill -9`` loses nothing. The committer
thread (``commit.py``) then encodes and writes the parquet file durably, appends the record to the
sidecar log, the commit point, and updates LeRobot's meta files. A crash before the pending log has the
episode whole leaves files nobody refers to: they are invisible, and the next ``open_for_append``
deletes them. Each writer session is a new chunk id (one append batch) and never rewrites an existing
episode file.

Saving costs the same for the 1000th episode as for the first: the jsonl files are appended to and only
the small ``info.json`` is replaced, at most once a second (and at close). LeRobot's meta files are
derived from the sidecar and not fsynced; after a crash the next open rebuilds them.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.datasets.commit import Committer, clear_pending, encode_arrow, episode_table, recover
from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.format import (
    DEFAULT_FEATURES,
    DEFAULT_FPS,
    EDIT_LOCK,
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    INFO_PATH,
    OPTIONAL_COLUMNS,
    PENDING_PATH,
    SIDECAR_PATH,
    TASKS_PATH,
    WRITE_LOCK,
    DatasetCorruptError,
    arrow_schema,
    data_file,
    load_info,
    make_info,
    user_features,
    validate_features,
    video_file,
    video_keys,
)
from flywheel.datasets.frames import validate_columns, validate_frame
from flywheel.datasets.meta import MetaFiles, stats_line, sync_meta, tasks_of
from flywheel.datasets.pending import PendingLog
from flywheel.datasets.records import (
    SKEW_LIMIT_MS,
    EpisodeRecord,
    add_event,
    encode_events,
    now,
    read_events,
    replay,
    schema_event,
    schema_header,
    truncate_torn_tail,
)
from flywheel.datasets.stats import batch_numeric_stats, compute_episode_stats, frame_column_stats
from flywheel.durable import TEMP_MARK, FolderLock, fsync_dir, locked, write_atomic
from flywheel.errors import Conflict, InvalidInput, NotFound

_RECORD_FIELDS = set(EpisodeRecord.__dataclass_fields__)
#: Default columns whose stats follow from the frame count (``stats.frame_column_stats``).
_CLOSED_FORM = ("timestamp", "frame_index", "index", "episode_index", "task_index")


def create_dataset(root: Path, *, features: dict[str, dict[str, Any]], fps: int = DEFAULT_FPS,
                   robot_type: str = "unknown") -> DatasetWriter:
    """Create an empty dataset folder and open a writer on it (chunk id 0).

    Args:
        root: the folder; it may exist but must not hold a dataset yet.
        features: user features, key -> ``{"dtype", "shape", "names"}`` (see ``format.validate_features``).
        fps: frames per second of the recording (default 50).
        robot_type: free text stored in info.json.

    Raises:
        InvalidInput: a bad feature declaration, fps or robot_type.
        Conflict: the folder holds a dataset already.

    Example:
        >>> feats = {"observation.state": {"dtype": "float32", "shape": [2], "names": None},
        ...          "action": {"dtype": "float32", "shape": [1], "names": None}}
        >>> with create_dataset(Path("/tmp/fw-ds"), features=feats, fps=50, robot_type="arm") as w:
        ...     w.add_frame({"observation.state": np.zeros(2), "action": 0.5}, task="reach")
        ...     rec = w.save_episode(success=True)
    """
    root = Path(root)
    feats = validate_features(features)
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        raise InvalidInput(f"must be a positive integer, got {fps!r}", field="fps")
    if not isinstance(robot_type, str) or not robot_type:
        raise InvalidInput("must be a non-empty string", field="robot_type")
    if (root / INFO_PATH).exists():
        raise Conflict(f"{root} holds a dataset already", hint="open it with open_for_append()")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    header = schema_header(feats, int(fps), robot_type)
    write_atomic(root / SIDECAR_PATH, encode_events([header]))
    for rel in (TASKS_PATH, EPISODES_PATH, EPISODES_STATS_PATH):
        write_atomic(root / rel, b"")
    info = make_info(features=feats, fps=int(fps), robot_type=robot_type)
    write_atomic(root / INFO_PATH, json.dumps(info, indent=4).encode())  # last: the folder is a dataset now
    return DatasetWriter._open(root)


def open_for_append(root: Path) -> DatasetWriter:
    """Open an existing dataset for a new append session (a new chunk id); also resumes after a crash.

    Opening repairs what a crash may have left: temporary files and files of uncommitted episodes are
    deleted, a torn sidecar line is cut off, LeRobot's meta files are brought in step with the records.

    Raises:
        NotFound: the folder holds no dataset.
        Conflict: another writer or a compaction holds the dataset.

    Example:
        >>> with open_for_append(Path("/tmp/fw-ds")) as w:  # doctest: +SKIP
        ...     w.chunk_id
        1
    """
    root = Path(root)
    if not (root / INFO_PATH).is_file() and not (root / SIDECAR_PATH).is_file():
        load_info(root)  # raises NotFound
    return DatasetWriter._open(root)


def _load_or_rebuild_info(root: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """info.json, rebuilt from the sidecar's schema line if a power loss damaged it."""
    try:
        return load_info(root)
    except (DatasetCorruptError, NotFound):
        header = schema_event(events)
        if header is None:
            raise
        return make_info(features=header["features"], fps=header["fps"], robot_type=header["robot_type"])


def uncommitted_files(root: Path, num_episodes: int, keys: list[str]) -> list[Path]:
    """Episode files no record refers to (index >= num_episodes) and temporary files: crash leftovers."""
    found = [p for p in root.rglob(f".*{TEMP_MARK}*") if p.is_file()]
    candidates = list((root / "data").glob("chunk-*/episode_*.parquet"))
    for key in keys:
        candidates += list((root / "videos").glob(f"chunk-*/{key}/episode_*.mp4"))
    for path in candidates:
        try:
            index = int(path.stem.split("_")[-1])
        except ValueError:
            continue
        if index >= num_episodes:
            found.append(path)
    return found


def cleanup_uncommitted(root: Path, num_episodes: int, keys: list[str]) -> list[Path]:
    """Delete the files ``uncommitted_files`` lists and return them."""
    found = uncommitted_files(root, num_episodes, keys)
    for path in found:
        path.unlink(missing_ok=True)
    return found


#: Column key -> (dtype, shape) of one frame.
Layout = dict[str, tuple[np.dtype, tuple[int, ...]]]
#: Frames an episode's buffer holds before it first doubles.
_FIRST_CAPACITY = 256


class _EpisodeBuffer:
    """The frames of the episode being recorded: one preallocated array per column, doubled when full.

    Attributes:
        layout: the columns, key -> (dtype, shape) of one frame.
        size: frames added.
        capacity: frames the arrays hold before they grow.
        slots: ``(key, dtype, shape, is_float, array)`` per column, what ``add_frame`` needs to check
            a frame and copy it in without building anything.
    """

    def __init__(self, layout: Layout) -> None:
        self.reset(layout)

    def reset(self, layout: Layout) -> None:
        """Start an empty episode with these columns, in fresh arrays (saved columns stay untouched)."""
        self.layout = layout
        self.size = 0
        self._use([np.empty((_FIRST_CAPACITY, *shape), dtype) for dtype, shape in layout.values()])

    def _use(self, arrays: list[np.ndarray]) -> None:
        self.capacity = len(arrays[0])
        self.slots = [(key, dtype, shape, dtype.kind == "f", array)
                      for (key, (dtype, shape)), array in zip(self.layout.items(), arrays, strict=True)]

    def grow(self) -> None:
        """Double the capacity, keeping the frames added so far."""
        bigger = []
        for *_, array in self.slots:
            new = np.empty((2 * self.capacity, *array.shape[1:]), array.dtype)
            new[: self.size] = array[: self.size]
            bigger.append(new)
        self._use(bigger)

    def append(self, values: list[np.ndarray]) -> None:
        """Copy one checked frame in (values in layout order)."""
        if self.size == self.capacity:
            self.grow()
        for (*_, array), value in zip(self.slots, values, strict=True):
            array[self.size] = value
        self.size += 1

    def columns(self) -> dict[str, np.ndarray]:
        """The added frames, key -> (T, *shape) array (views, not copies)."""
        return {key: array[: self.size] for key, *_, array in self.slots}


@dataclass
class _Saved:
    """What the meta files need of a saved episode once it is committed."""

    record: EpisodeRecord
    columns: dict[str, np.ndarray]  # the numeric columns whose stats are measured (not in closed form)
    first_index: int
    task_index: int
    video_stats: dict[str, Any]  # measured at once: the frames are not kept until the commit


class DatasetWriter:
    """Writes episodes into one dataset folder; holds the folder's write lock until closed.

    Build it with ``create_dataset`` or ``open_for_append``.

    Attributes:
        root: the dataset folder.
        fps: frames per second.
        features: the user features.
        chunk_id: the append batch of this session.
        saved: records of the episodes saved in this session.
    """

    def __init__(self, root: Path, lock: FolderLock, info: dict[str, Any], records: list[EpisodeRecord]) -> None:
        self.root = root
        self._lock: FolderLock | None = lock
        self.info = info
        self.features = user_features(info["features"])
        self._all_features = info["features"]
        self.fps = int(info["fps"])
        self.chunk_id = max((r.chunk_id for r in records), default=-1) + 1
        self.saved: list[EpisodeRecord] = []
        self._video_keys = video_keys(self.features)
        self._schema = arrow_schema(self.features)
        self._meta = MetaFiles(root, info=info, records=records)
        self._tasks = tasks_of(records)  # task -> task_index, owned by this thread (meta runs in another)
        self._next_index = len(records)
        self._next_frame = sum(r.total_frames for r in records)
        specs = {**self.features, **{k: DEFAULT_FEATURES[k] for k in OPTIONAL_COLUMNS}}
        self._frame_specs: Layout = {k: (np.dtype("uint8" if v["dtype"] == "video" else v["dtype"]), tuple(v["shape"]))
                                     for k, v in specs.items()}
        self._buffer = _EpisodeBuffer(self._layout(self.features))
        self._task: str | None = None
        self._committer = Committer(root, self._on_commit)
        self._pending = PendingLog(root / PENDING_PATH)
        self._dirs_made: set[Path] = set()

    @classmethod
    def _open(cls, root: Path) -> DatasetWriter:
        lock = FolderLock(root / WRITE_LOCK, what=f"dataset {root}")
        try:
            from flywheel.datasets.compact import remove_build_dirs

            remove_build_dirs(root)
            with locked(root / EDIT_LOCK, what=f"dataset {root}", blocking=True):
                truncate_torn_tail(root)
                events, _ = read_events(root)
                info = _load_or_rebuild_info(root, events)
                keys = video_keys(user_features(info["features"]))
                records = recover(root, replay(events, path=root / SIDECAR_PATH), keys)
            cleanup_uncommitted(root, len(records), keys)

            readers: list[Any] = []

            def stats_of(index: int) -> dict[str, Any]:
                from flywheel.datasets.reader import DatasetReader

                if not readers:
                    readers.append(DatasetReader(root))
                reader = readers[0]
                return compute_episode_stats(
                    {**reader.read_columns(index), **{k: reader.read_video(index, k) for k in keys}},
                    info["features"])

            sync_meta(root, info, records, stats_of)
            info = load_info(root)
        except BaseException:
            lock.close()
            raise
        return cls(root, lock, info, records)

    # -- state -------------------------------------------------------------------------------------

    @property
    def num_episodes(self) -> int:
        """Committed episodes in the dataset (all sessions)."""
        return self._next_index

    @property
    def total_frames(self) -> int:
        """Committed frames in the dataset (all sessions)."""
        return self._next_frame

    @property
    def buffered_frames(self) -> int:
        """Frames added to the current, unsaved episode."""
        return self._buffer.size

    def _check_open(self) -> None:
        if self._lock is None:
            raise Conflict(f"the writer of {self.root} is closed", hint="open it again with open_for_append()")

    # -- frame by frame ----------------------------------------------------------------------------

    def add_frame(self, frame: dict[str, Any], *, task: str) -> None:
        """Validate one frame and add it to the current episode (nothing is written yet).

        Args:
            frame: every user feature -> value; ``next.reward``/``next.done`` optional.
            task: the episode's task; every frame of an episode has the same task.

        Raises:
            InvalidInput: naming the feature (missing, unknown, dtype, shape, non-finite); the frame
                is not added.

        Example:
            >>> w.add_frame({"observation.state": np.zeros(2), "action": 0.5}, task="reach")  # doctest: +SKIP
        """
        if task != self._task or self._lock is None:
            self._check_task(task)
        buf = self._buffer
        n = buf.size
        if type(frame) is dict and len(frame) == len(buf.slots) and n < buf.capacity:
            # The common case: an array of the exact dtype and shape per column, copied straight in.
            # v.dot(v) is finite only if every value is (an overflow sends the frame to the full check).
            for key, dtype, shape, is_float, array in buf.slots:
                v = frame.get(key)
                if type(v) is not np.ndarray or v.dtype != dtype or v.shape != shape or (
                        is_float and not math.isfinite(v.dot(v))):
                    break
                array[n] = v
            else:
                buf.size = n + 1
                self._task = task
                return
        self._add_checked(frame, task)

    def _check_task(self, task: str) -> None:
        """Refuse a closed writer, an empty task, or a task that differs from the episode's."""
        self._check_open()
        if not isinstance(task, str) or not task:
            raise InvalidInput("must be a non-empty string", field="task")
        if self._task is not None and task != self._task:
            raise InvalidInput(f"differs from the episode's task {self._task!r}", field="task", allowed=self._task)

    def _add_checked(self, frame: dict[str, Any], task: str) -> None:
        """Add a frame ``add_frame`` could not take as it is: validated and converted value by value."""
        values = validate_frame(frame, self.features)
        buf = self._buffer
        if buf.layout.keys() != values.keys():
            if buf.size:
                raise InvalidInput("frames of one episode must carry the same optional columns", field="frame",
                                   allowed=sorted(buf.layout))
            buf.reset(self._layout(values))
        buf.append([values[key] for key in buf.layout])
        self._task = task

    def _layout(self, frame: dict[str, Any]) -> Layout:
        """The buffer columns for frames with ``frame``'s keys: the user features, then the optional columns."""
        return {key: spec for key, spec in self._frame_specs.items() if key in frame}

    def clear_episode(self) -> None:
        """Drop the frames of the current episode."""
        self._buffer.reset(self._layout(self.features))
        self._task = None

    def save_episode(self, *, success: bool | None = None, source: str = "record",
                     metadata: dict[str, Any] | None = None, max_skew_ms: float | None = None) -> EpisodeRecord:
        """Commit the added frames as one episode.

        On return the episode survives a kill of the process (it is in the pending log); it survives a
        power loss once the committer has fsynced it, within a fraction of a second, or after :meth:`flush`.

        Args:
            success: whether the episode achieved its task, if known.
            source: where the episode came from.
            metadata: free-form JSON fields kept in the record.
            max_skew_ms: the largest sampling skew measured (the recorder passes it); above
                ``SKEW_LIMIT_MS`` the record is flagged.

        Returns:
            The committed record.

        Raises:
            InvalidInput: no frames were added, or metadata is not JSON.

        Example:
            >>> w.save_episode(success=True).total_frames  # doctest: +SKIP
            1
        """
        self._check_open()
        if not self._buffer.size:
            raise InvalidInput("no frames were added to the episode", field="frames", hint="call add_frame() first")
        columns = self._buffer.columns()
        record = self._commit(columns, task=self._task or "", success=success, source=source,
                              metadata=metadata, max_skew_ms=max_skew_ms)
        self.clear_episode()
        return record

    # -- whole episodes ----------------------------------------------------------------------------

    def append_episode(self, ep: EpisodeArrays, *, source: str | None = None) -> EpisodeRecord:
        """Validate and commit a whole episode (the bulk path importers use).

        Args:
            ep: columns for every user feature (``next.reward``/``next.done`` optional), task,
                success and metadata; record fields found in ``ep.metadata`` are not copied.
            source: overrides ``ep.metadata["source"]`` (default "import").

        Raises:
            InvalidInput: a schema mismatch or bad value, named; nothing is written.
            Conflict: frames were added with add_frame and not saved.

        Example:
            >>> ep = EpisodeArrays({"observation.state": np.zeros((3, 2)), "action": np.zeros((3, 1))},
            ...                    task="reach")
            >>> w.append_episode(ep).total_frames  # doctest: +SKIP
            3
        """
        self._check_open()
        if self._buffer.size:
            raise Conflict("an episode is being recorded with add_frame()",
                           hint="save_episode() or clear_episode() first")
        if not isinstance(ep, EpisodeArrays):
            raise InvalidInput(f"must be EpisodeArrays, got {type(ep).__name__}", field="episode")
        if not isinstance(ep.task, str) or not ep.task:
            raise InvalidInput("must be a non-empty string", field="task")
        columns = validate_columns(ep.columns, self.features)
        meta = {k: v for k, v in (ep.metadata or {}).items() if k not in _RECORD_FIELDS}
        src = source or str((ep.metadata or {}).get("source") or "import")
        return self._commit(columns, task=ep.task, success=ep.success, source=src, metadata=meta, max_skew_ms=None)

    # -- commit ------------------------------------------------------------------------------------

    def _mkdir(self, path: Path) -> None:
        if path in self._dirs_made:
            return
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            for p in (path, *path.parents):
                if p == self.root:
                    break
                fsync_dir(p.parent)
        self._dirs_made.add(path)

    def _all_columns(self, columns: dict[str, np.ndarray], index: int, task_index: int) -> dict[str, np.ndarray]:
        """The episode's numeric user columns plus the default columns, all (T, n)."""
        n = len(next(iter(columns.values())))
        frame = np.arange(n, dtype=np.int64).reshape(-1, 1)
        done = columns.get("next.done")
        if done is None:
            done = np.zeros((n, 1), dtype=bool)
            done[-1] = True
        reward = columns.get("next.reward")
        out = {k: columns[k] for k, spec in self.features.items() if spec["dtype"] != "video"}
        out.update({
            "timestamp": (frame / self.fps).astype(np.float32),
            "frame_index": frame,
            "episode_index": np.full((n, 1), index, dtype=np.int64),
            "index": frame + self._next_frame,
            "task_index": np.full((n, 1), task_index, dtype=np.int64),
            "next.reward": np.zeros((n, 1), np.float32) if reward is None else reward.reshape(n, 1),
            "next.done": done.reshape(n, 1),
        })
        return out

    def _commit(self, columns: dict[str, np.ndarray], *, task: str, success: bool | None, source: str,
                metadata: dict[str, Any] | None, max_skew_ms: float | None) -> EpisodeRecord:
        if success is not None and not isinstance(success, bool | np.bool_):
            raise InvalidInput(f"must be true, false or null, got {success!r}", field="success")
        if not isinstance(source, str):
            raise InvalidInput("must be a string", field="source")
        metadata = dict(metadata or {})
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"must be JSON-serialisable: {exc}", field="metadata") from exc
        index = self._next_index
        n = len(next(iter(columns.values())))
        task_index = self._tasks.get(task, len(self._tasks))
        cols = self._all_columns(columns, index, task_index)
        written: list[Path] = []
        try:
            for key in self._video_keys:
                from flywheel.datasets.video import encode_video

                path = video_file(self.root, key, index)
                self._mkdir(path.parent)
                written.append(path)
                encode_video(columns[key], path, self.fps)
            self._mkdir(data_file(self.root, index).parent)  # for the committer
            table = episode_table(cols, self.features, self._schema)  # of fresh arrays: nothing reuses them
            record = EpisodeRecord(
                episode_index=index, episode_id=uuid.uuid4().hex, chunk_id=self.chunk_id, created_at=now(),
                total_frames=n, start_frame=0, end_frame=n, task=task,
                success=None if success is None else bool(success), soft_deleted=False, source=source,
                skew_flagged=max_skew_ms is not None and max_skew_ms > SKEW_LIMIT_MS,
                max_skew_ms=None if max_skew_ms is None else float(max_skew_ms), metadata=metadata,
            )
            line = encode_events([add_event(record)])
            self._pending.append(line, encode_arrow(table))  # saved: a kill -9 loses nothing now
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

        measured = {k: v for k, v in cols.items() if k not in _CLOSED_FORM}
        saved = _Saved(record, measured, int(cols["index"][0, 0]), task_index,
                       compute_episode_stats({k: columns[k] for k in self._video_keys}, self._all_features))
        size = table.nbytes + sum(v.nbytes for v in measured.values())
        self._committer.submit(index, line, table, saved, size)
        self._next_index += 1
        self._next_frame += n
        self._tasks.setdefault(task, task_index)
        self.saved.append(record)
        return record

    def _on_commit(self, batch: list[_Saved]) -> None:
        """Add a committed batch to LeRobot's meta files, with each episode's stats (on the committer thread)."""
        lines = []
        for saved, numeric in zip(batch, batch_numeric_stats([saved.columns for saved in batch]), strict=True):
            record = saved.record
            stats = {**numeric, **saved.video_stats}
            stats.update(frame_column_stats(record.total_frames, fps=self.fps, first_index=saved.first_index,
                                            episode_index=record.episode_index, task_index=saved.task_index))
            lines.append((record, stats_line(record.episode_index, stats)))
        self._meta.add_episodes(lines)

    # -- lifetime ----------------------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until every saved episode is committed (durable, in the sidecar and LeRobot's meta files)."""
        self._check_open()
        self._committer.close()
        self._committer = Committer(self.root, self._on_commit)

    def close(self) -> None:
        """Commit what was saved, finish the meta files and release the dataset; unsaved frames are dropped."""
        self.clear_episode()
        try:
            self._committer.close()
            if self._lock is not None:
                self._meta.write_info()
                clear_pending(self.root)  # every saved episode is committed now
        finally:
            self._release()

    def _release(self) -> None:
        self._pending.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
