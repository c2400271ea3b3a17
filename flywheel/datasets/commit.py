"""Saving vs committing an episode: process-crash safety at once, power-loss durability in the background.

``save_episode`` returns once the episode's files are complete under their final names and its record
is appended to the *pending* journal (``meta/flywheel_pending.jsonl``). Nothing is fsynced yet, but
the operating system keeps every completed write when the process is killed, so from that moment a
``kill -9`` loses nothing.

A committer thread then makes each episode durable, in order: fsync its files and their folders, and
only then append its record to the sidecar log (fsynced), the commit point; LeRobot's meta files follow.
So the sidecar never names a file that is not on disk, even after a power loss. Episodes are committed
in batches when saving outpaces the disk, which keeps the fsync cost off the recording loop.

After a crash, ``recover`` (run by every writer open and by compaction) commits the pending episodes
whose files are complete and drops the rest; ``visible_records`` shows readers the same episodes
without writing anything.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.durable import append_bytes, fsync_dir, write_atomic
from flywheel.datasets.format import PENDING_PATH, SIDECAR_PATH, data_file, video_file
from flywheel.datasets.records import EpisodeRecord, encode_events, read_events, record_fields, record_from_event

_QUEUE_LIMIT = 64


def fsync_file(path: Path) -> None:
    """fsync one file's data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def episode_files(root: Path, record: EpisodeRecord, video_keys: list[str]) -> list[Path]:
    """The parquet and mp4 files of an episode."""
    return [data_file(root, record.episode_index), *(video_file(root, k, record.episode_index) for k in video_keys)]


def _complete(root: Path, record: EpisodeRecord, video_keys: list[str]) -> bool:
    """Whether an episode's files are all there and its parquet file is whole (footer readable)."""
    path = data_file(root, record.episode_index)
    try:
        with pa.OSFile(str(path)) as f:
            if pq.ParquetFile(f).metadata.num_rows != record.total_frames:
                return False
    except (OSError, pa.ArrowException):
        return False
    return all(p.is_file() and p.stat().st_size > 0 for p in episode_files(root, record, video_keys)[1:])


def _pending_tail(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[tuple[EpisodeRecord, Any]]:
    """Pending records that continue the committed ones, in order, up to the first incomplete one."""
    events, _ = read_events(root, PENDING_PATH, missing_ok=True)
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
    """Committed records plus the saved-but-uncommitted ones whose files are complete (read-only)."""
    return records + [r for r, _ in _pending_tail(root, records, video_keys)]


def recover(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[EpisodeRecord]:
    """Commit the complete pending episodes left by a crash, then empty the pending journal.

    Call with the folder's write and edit locks held. Returns the committed records after recovery.
    """
    tail = _pending_tail(root, records, video_keys)
    if tail:
        dirs = set()
        for record, _ in tail:
            for path in episode_files(root, record, video_keys):
                fsync_file(path)
                dirs.add(path.parent)
        for d in dirs:
            fsync_dir(d)
        append_bytes(root / SIDECAR_PATH, encode_events([event for _, event in tail]))
    if (root / PENDING_PATH).exists() and (root / PENDING_PATH).stat().st_size:
        write_atomic(root / PENDING_PATH, b"")
    return records + [r for r, _ in tail]


@dataclass
class _Job:
    record: EpisodeRecord
    line: bytes
    files: list[Path]
    after: Callable[[], None]


class Committer:
    """A thread that commits saved episodes in order (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=_QUEUE_LIMIT)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="flywheel-commit", daemon=True)
        self._thread.start()

    def submit(self, record: EpisodeRecord, line: bytes, files: list[Path], after: Callable[[], None]) -> None:
        """Queue an episode saved with ``line`` in the pending journal; ``after`` runs once it is committed."""
        self.raise_error()
        self._queue.put(_Job(record, line, files, after))

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
        dirs: dict[Path, None] = {}
        for job in jobs:
            for path in job.files:
                fsync_file(path)
                dirs[path.parent] = None
        for d in dirs:
            fsync_dir(d)
        append_bytes(self.root / SIDECAR_PATH, b"".join(job.line for job in jobs))  # the commit point
        for job in jobs:
            job.after()
