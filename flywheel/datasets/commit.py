"""Saving vs committing an episode: process-crash safety at once, power-loss durability in the background.

``save_episode`` returns once the episode's columns are written raw to ``meta/pending/episode_N.bin``
(one ``writev``, its mp4 files complete too) and its record is appended to the *pending* journal
(``meta/flywheel_pending.jsonl``). Nothing is fsynced yet, but the operating system keeps every
completed write when the process is killed, so from that moment a ``kill -9`` loses nothing.

A committer thread then makes each episode durable, in order: encode its parquet file to a temporary
name, fsync, rename, fsync the folder, and only then append its record to the sidecar log (fsynced), the
commit point; LeRobot's meta files follow and the raw file is deleted. So the sidecar never names a
file that is not on disk, even after a power loss, and the parquet encoding and fsyncs run beside the
recording loop instead of inside it. Episodes are committed in batches when saving outpaces the disk.

After a crash, ``recover`` (run by every writer open, by compaction, and by edits when no writer is
alive) commits the pending episodes whose data is complete and drops the rest; ``visible_records``
shows readers the same episodes without writing anything.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.format import (
    DEFAULT_FEATURES,
    PENDING_PATH,
    SIDECAR_PATH,
    DatasetCorruptError,
    arrow_schema,
    data_file,
    to_arrow,
    video_file,
    wal_file,
)
from flywheel.datasets.records import EpisodeRecord, encode_events, read_events, record_fields, record_from_event
from flywheel.durable import append_bytes, fsync_dir, fsync_file, temp_path

_QUEUE_LIMIT = 64


# -- raw columns of saved episodes -------------------------------------------------------------------


def write_wal(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Write columns raw: a JSON header line (key, dtype, shape per column), then their bytes."""
    arrays = [np.ascontiguousarray(v) for v in columns.values()]
    header = json.dumps({"columns": [[k, a.dtype.str, list(a.shape)] for k, a in zip(columns, arrays,
                                                                                    strict=True)]})
    parts: list[Any] = [header.encode() + b"\n", *(memoryview(a).cast("B") for a in arrays)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        total = sum(len(p) for p in parts)
        done = os.writev(fd, parts)
        if done != total:  # a short write: finish byte by byte (never happens on local disks)
            rest = memoryview(b"".join(bytes(p) for p in parts))[done:]
            while rest:
                rest = rest[os.write(fd, rest):]
    finally:
        os.close(fd)


def _wal_layout(path: Path) -> tuple[int, list[tuple[str, np.dtype, tuple[int, ...]]]] | None:
    try:
        with open(path, "rb") as f:
            line = f.readline(1 << 20)
            size = os.fstat(f.fileno()).st_size
        cols = [(k, np.dtype(dt), tuple(shape)) for k, dt, shape in json.loads(line)["columns"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    expected = len(line) + sum(dt.itemsize * int(np.prod(shape)) for _, dt, shape in cols)
    return (len(line), cols) if size == expected else None


def read_wal(path: Path) -> dict[str, np.ndarray] | None:
    """The columns of a raw file, or None if it is missing or incomplete."""
    layout = _wal_layout(path)
    if layout is None:
        return None
    offset, cols = layout
    data = path.read_bytes()
    out = {}
    for key, dtype, shape in cols:
        n = dtype.itemsize * int(np.prod(shape))
        out[key] = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        offset += n
    return out


# -- parquet -----------------------------------------------------------------------------------------


def episode_table(columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]],
                  schema: pa.Schema | None = None) -> pa.Table:
    """The arrow table of an episode from all its (T, n) columns (user numeric and default)."""
    schema = schema if schema is not None else arrow_schema(features)
    specs = {**features, **DEFAULT_FEATURES}
    return pa.Table.from_arrays([to_arrow(columns[f.name], specs[f.name]) for f in schema], schema=schema)


def write_parquet_durably(path: Path, table: pa.Table) -> None:
    """Encode to a temporary file, fsync, rename (the folder is fsynced by the caller)."""
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, use_dictionary=False, write_statistics=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def parquet_complete(path: Path, num_rows: int) -> bool:
    """Whether a parquet file is there, whole (footer readable) and of the expected length."""
    try:
        with pa.OSFile(str(path)) as f:
            return pq.ParquetFile(f).metadata.num_rows == num_rows
    except (OSError, pa.ArrowException):
        return False


# -- the pending tail --------------------------------------------------------------------------------


def _complete(root: Path, record: EpisodeRecord, video_keys: list[str]) -> bool:
    idx = record.episode_index
    videos = [video_file(root, k, idx) for k in video_keys]
    if not all(p.is_file() and p.stat().st_size > 0 for p in videos):
        return False
    return parquet_complete(data_file(root, idx), record.total_frames) or _wal_layout(wal_file(root, idx)) is not None


def _pending_tail(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[tuple[EpisodeRecord, Any]]:
    """Pending records that continue the committed ones, in order, up to the first incomplete one."""
    events, _ = read_events(root, PENDING_PATH, missing_ok=True)
    if not events:
        return []
    fields = record_fields(read_events(root, SIDECAR_PATH)[0][:1])
    tail: list[tuple[EpisodeRecord, Any]] = []
    for event in events:
        if type(event) is not list:
            continue
        try:
            record = record_from_event(event, fields)
        except (TypeError, ValueError):
            break
        due = len(records) + len(tail)
        if record.episode_index < due:
            continue  # committed already
        if record.episode_index != due or not _complete(root, record, video_keys):
            break
        tail.append((record, event))
    return tail


def visible_records(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[EpisodeRecord]:
    """Committed records plus the saved-but-uncommitted ones whose data is complete (read-only)."""
    return records + [r for r, _ in _pending_tail(root, records, video_keys)]


def recover(root: Path, records: list[EpisodeRecord], video_keys: list[str],
            features: dict[str, dict[str, Any]]) -> list[EpisodeRecord]:
    """Commit the complete pending episodes left by a crash, then clear the pending journal and files.

    Call with the folder's write and edit locks held. Returns the committed records after recovery.
    """
    tail = _pending_tail(root, records, video_keys)
    if tail:
        dirs: dict[Path, None] = {}
        for record, _ in tail:
            path = data_file(root, record.episode_index)
            if parquet_complete(path, record.total_frames):
                fsync_file(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                columns = read_wal(wal_file(root, record.episode_index))
                if columns is None:  # _complete saw it whole a moment ago
                    raise DatasetCorruptError("its saved columns vanished during recovery",
                                              episode_index=record.episode_index)
                write_parquet_durably(path, episode_table(columns, features))
            dirs[path.parent] = None
            for key in video_keys:
                fsync_file(video_file(root, key, record.episode_index))
        for d in dirs:
            fsync_dir(d)
        append_bytes(root / SIDECAR_PATH, encode_events([event for _, event in tail]))
    clear_pending(root)
    return records + [r for r, _ in tail]


def clear_pending(root: Path) -> None:
    """Remove the pending journal and raw files once everything in them is committed (or dropped)."""
    (root / PENDING_PATH).unlink(missing_ok=True)
    shutil.rmtree(wal_file(root, 0).parent, ignore_errors=True)
    fsync_dir(root / "meta")


# -- the committer thread ----------------------------------------------------------------------------


@dataclass
class _Job:
    index: int
    line: bytes
    columns: dict[str, np.ndarray]
    after: Callable[[], None]


class Committer:
    """A thread that commits saved episodes in order (see the module docstring)."""

    def __init__(self, root: Path, features: dict[str, dict[str, Any]]) -> None:
        self.root = root
        self.features = features
        self._schema = arrow_schema(features)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=_QUEUE_LIMIT)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="flywheel-commit", daemon=True)
        self._thread.start()

    def submit(self, index: int, line: bytes, columns: dict[str, np.ndarray], after: Callable[[], None]) -> None:
        """Queue episode ``index``, saved with ``line`` in the pending journal; ``after`` runs once committed."""
        self.raise_error()
        self._queue.put(_Job(index, line, columns, after))

    def raise_error(self) -> None:
        """Re-raise, in the caller's thread, a failure of the committer."""
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Commit everything queued, stop the thread, and re-raise any failure."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.raise_error()

    def _run(self) -> None:
        stop = False
        while not stop:
            jobs: list[_Job] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True
                    break
                jobs.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if jobs and self._error is None:
                try:
                    self._commit(jobs)
                except BaseException as exc:  # surfaced to the writer on its next call
                    self._error = exc

    def _commit(self, jobs: list[_Job]) -> None:
        # Encode every file of the batch first, then fsync them: the first fsync commits the journal for
        # all of them, so the others only wait for their data (already under way).
        pending: list[tuple[Path, Path]] = []
        try:
            for job in jobs:
                path = data_file(self.root, job.index)
                tmp = temp_path(path)
                with open(tmp, "wb") as f:
                    pq.write_table(episode_table(job.columns, self.features, self._schema), f,
                                   use_dictionary=False, write_statistics=False)
                    f.flush()
                pending.append((tmp, path))
            for tmp, _ in pending:
                fsync_file(tmp)
            for tmp, path in pending:
                os.replace(tmp, path)
        finally:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
        for d in dict.fromkeys(path.parent for _, path in pending):
            fsync_dir(d)
        append_bytes(self.root / SIDECAR_PATH, b"".join(job.line for job in jobs))  # the commit point
        for job in jobs:
            job.after()
            wal_file(self.root, job.index).unlink(missing_ok=True)
