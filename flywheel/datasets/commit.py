"""Saving vs committing an episode: process-crash safety at once, power-loss durability in the background.

``save_episode`` builds the episode's arrow table and returns once the table (as an Arrow IPC stream,
written in microseconds) and its record are appended to the pending log (``pending.py``; its mp4 files
are complete by then too).
Nothing is fsynced yet, but the operating system keeps every completed write when the process is
killed, so from that moment a ``kill -9`` loses nothing. Saving creates no file per episode: the
recording loop pays for one append to an open file.

A committer thread then makes the saved episodes durable, in order and in batches: encode and write
each one's parquet file (temporary name, fsync, rename; several files at a time, on pool threads: the
parquet encoder and the file calls release the GIL, so this runs on another core while recording goes
on), fsync their folders, and only then append their records to the sidecar log (fsynced), the commit
point; LeRobot's meta files follow. So the sidecar never names a file that is not on disk, even after a
power loss. A batch gathers the episodes saved within a tenth of a second, so a fast recording loop
pays for one wake-up and one round of fsyncs per batch, not per episode.

After a crash, ``recover`` (run by every writer open, by compaction, and by edits when no writer is
alive) commits the pending episodes whose data is whole and drops the rest (first those an earlier
version's journal holds, ``legacy_journal.py``); ``pending_tail`` shows readers the same episodes
without writing anything.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
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
)
from flywheel.datasets.pending import Entry, read_entries, read_payload
from flywheel.datasets.records import EpisodeRecord, encode_events, read_events, record_fields, record_from_event
from flywheel.durable import append_bytes, fsync_dir, fsync_file, temp_path

#: How long a batch gathers saved episodes after its first one.
GATHER_S = 0.1
#: A batch is committed early once its episodes hold this much memory (arrow tables and stats columns).
BATCH_BYTES = 64 << 20
#: Saved episodes waiting for the committer before ``save_episode`` waits too.
_QUEUE_LIMIT = 1024
#: How many files of a batch are written and fsynced at a time.
PARALLEL_FILES = 8


# -- parquet -----------------------------------------------------------------------------------------


def episode_table(columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]],
                  schema: pa.Schema | None = None) -> pa.Table:
    """The arrow table of an episode from all its (T, n) columns (user numeric and default)."""
    schema = schema if schema is not None else arrow_schema(features)
    specs = {**features, **DEFAULT_FEATURES}
    return pa.Table.from_arrays([to_arrow(columns[f.name], specs[f.name]) for f in schema], schema=schema)


def encode_parquet(table: pa.Table) -> pa.Buffer:
    """The bytes of the parquet file of ``table``, encoded in memory."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, use_dictionary=False, write_statistics=False)
    return sink.getvalue()


def encode_arrow(table: pa.Table) -> pa.Buffer:
    """The table as an Arrow IPC stream (a pending log payload): its buffers, nearly as they are."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return sink.getvalue()


def payload_table(data: bytes | None, entry: Entry) -> pa.Table | None:
    """The episode's table from a pending log payload (``entry.format``), None if missing or not whole."""
    if data is None:
        return None
    try:
        if entry.format == "arrow":
            with pa.ipc.open_stream(pa.BufferReader(data)) as stream:
                return stream.read_all()
        return pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException):
        return None


def parquet_rows(source: Path | bytes) -> int | None:
    """The row count of a whole parquet file (a path or its bytes); None if it is missing or not whole."""
    try:
        if isinstance(source, Path):
            with pa.OSFile(str(source)) as f:
                return pq.ParquetFile(f).metadata.num_rows
        return pq.ParquetFile(pa.BufferReader(source)).metadata.num_rows
    except (OSError, pa.ArrowException):
        return None


def in_parallel(task: Callable[..., None], items: list[tuple[Any, ...]]) -> None:
    """Run ``task(*item)`` for every item, up to ``PARALLEL_FILES`` at a time; re-raise the first failure.

    File system calls and fsyncs release the GIL, and a disk answers several fsyncs in flight far
    sooner than the same fsyncs one after another.
    """
    if len(items) < 2:
        for item in items:
            task(*item)
        return
    with ThreadPoolExecutor(min(PARALLEL_FILES, len(items)), thread_name_prefix="flywheel-files") as pool:
        for future in [pool.submit(task, *item) for item in items]:
            future.result()


def _write_synced(tmp: Path, data: Any) -> None:
    """Create ``tmp`` with ``data`` (bytes, or a table encoded as parquet here) and fsync it."""
    if isinstance(data, pa.Table):
        data = encode_parquet(data)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(files: list[tuple[Path, Any]]) -> None:
    """Write each ``(path, bytes or arrow table)`` to a temporary name and fsync it (several at a time; a
    table is encoded as parquet on the way), then rename them all and fsync their folders."""
    renames = [(temp_path(path), path) for path, _ in files]
    try:
        in_parallel(_write_synced, [(tmp, data) for (tmp, _), (_, data) in zip(renames, files, strict=True)])
        for tmp, path in renames:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in renames:
            tmp.unlink(missing_ok=True)
        raise
    for folder in dict.fromkeys(path.parent for _, path in renames):
        fsync_dir(folder)


# -- the pending tail --------------------------------------------------------------------------------


def videos_written(root: Path, episode_index: int, video_keys: list[str]) -> bool:
    """Whether every mp4 file of a saved episode is there and not empty (written before its save returned)."""
    paths = [video_file(root, key, episode_index) for key in video_keys]
    return all(path.is_file() and path.stat().st_size > 0 for path in paths)


def _complete(root: Path, record: EpisodeRecord, entry: Entry, video_keys: list[str]) -> bool:
    """Whether a pending episode's mp4 files are there and its frames are whole (parquet file or log)."""
    idx = record.episode_index
    if not videos_written(root, idx, video_keys):
        return False
    if parquet_rows(data_file(root, idx)) == record.total_frames:
        return True
    table = payload_table(read_payload(root / PENDING_PATH, entry), entry)
    return table is not None and table.num_rows == record.total_frames


def _pending_file(root: Path, entry: Entry) -> Any:
    """What ``write_durably`` writes as a pending episode's parquet file: its table, or older logs' parquet
    bytes; None if they are gone."""
    data = read_payload(root / PENDING_PATH, entry)
    return data if entry.format == "parquet" else payload_table(data, entry)


def pending_tail(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[tuple[EpisodeRecord, Entry]]:
    """Pending episodes that continue the committed ones, in order, up to the first incomplete one."""
    entries = read_entries(root / PENDING_PATH)
    if not entries:
        return []
    fields = record_fields(read_events(root, SIDECAR_PATH)[0][:1])
    tail: list[tuple[EpisodeRecord, Entry]] = []
    for entry in entries:
        try:
            record = record_from_event(entry.event, fields)
        except (TypeError, ValueError):
            break
        due = len(records) + len(tail)
        if record.episode_index < due:
            continue  # committed already
        if record.episode_index != due or not _complete(root, record, entry, video_keys):
            break
        tail.append((record, entry))
    return tail


def visible_records(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[EpisodeRecord]:
    """Committed records plus the saved-but-uncommitted ones whose data is whole (read-only)."""
    return records + [r for r, _ in pending_tail(root, records, video_keys)]


def recover(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[EpisodeRecord]:
    """Commit the whole pending episodes left by a crash, then clear the pending log.

    Episodes an earlier Flywheel left in its own pending journal are committed first
    (``legacy_journal.py``). Call with the folder's write and edit locks held. Returns the committed
    records after recovery.
    """
    from flywheel.datasets.legacy_journal import recover_legacy  # it commits through this module

    records = recover_legacy(root, records, video_keys)
    tail = pending_tail(root, records, video_keys)
    commit_saved(root, [(record, entry.event, partial(_pending_file, root, entry)) for record, entry in tail],
                 video_keys)
    clear_pending(root)
    return records + [r for r, _ in tail]


#: A saved episode to commit: its record, its "add" event, and a function that returns its parquet file's
#: bytes or its arrow table (None if they are gone), called only when that file is not whole on disk already.
SavedEpisode = tuple[EpisodeRecord, list[Any], Callable[[], Any]]


def commit_saved(root: Path, saved: list[SavedEpisode], video_keys: list[str]) -> None:
    """Commit episodes saved before a crash, in order, with one sidecar append (the commit point).

    Their mp4 files and whole parquet files are fsynced; the parquet files not on disk yet are written
    durably from their saved bytes; only then are their "add" events appended to the sidecar.

    Raises:
        DatasetCorruptError: an episode's saved bytes vanished after they were found whole.
    """
    if not saved:
        return
    present: list[Path] = []
    missing: list[tuple[Path, Any]] = []
    for record, _, payload_of in saved:
        present += [video_file(root, key, record.episode_index) for key in video_keys]
        path = data_file(root, record.episode_index)
        if parquet_rows(path) == record.total_frames:
            present.append(path)
            continue
        payload = payload_of()
        if payload is None:  # the caller found it whole a moment ago
            raise DatasetCorruptError("its pending data vanished during recovery",
                                      episode_index=record.episode_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        missing.append((path, payload))
    in_parallel(fsync_file, [(path,) for path in present])
    for folder in dict.fromkeys(path.parent for path in present):
        fsync_dir(folder)
    write_durably(missing)
    append_bytes(root / SIDECAR_PATH, encode_events([event for _, event, _ in saved]))


def clear_pending(root: Path) -> None:
    """Remove the pending log once everything in it is committed (or dropped)."""
    (root / PENDING_PATH).unlink(missing_ok=True)
    fsync_dir(root / "meta")


# -- the committer thread ----------------------------------------------------------------------------


@dataclass
class _Job:
    index: int
    line: bytes
    table: pa.Table
    note: Any
    size: int


class Committer:
    """A thread that commits saved episodes in order, in batches (see the module docstring).

    A batch starts with the first episode saved after the previous batch and gathers the episodes saved
    in the next ``GATHER_S`` seconds, or fewer once ``BATCH_BYTES`` are waiting or the writer closes.
    So a fast recording loop pays for one wake-up, one round of fsyncs (``PARALLEL_FILES`` in flight)
    and one sidecar append per batch rather than per episode; the parquet encoding, the bulk of the
    committer's work, runs without the GIL.

    Args:
        root: the dataset folder.
        on_commit: called on the committer thread with the ``note`` of each episode of a committed
            batch, in order.
    """

    def __init__(self, root: Path, on_commit: Callable[[list[Any]], None]) -> None:
        self.root = root
        self._on_commit = on_commit
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=_QUEUE_LIMIT)
        self._wake = threading.Event()  # the batch is full, or the writer is closing
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="flywheel-commit", daemon=True)
        self._thread.start()

    def submit(self, index: int, line: bytes, table: pa.Table, note: Any, size: int) -> None:
        """Queue episode ``index``: its "add" ``line``, its ``table`` (encoded as its parquet file) and the
        ``note`` for ``on_commit``, which hold ``size`` bytes of memory until the episode is committed."""
        self.raise_error()
        self._queue.put(_Job(index, line, table, note, size))
        with self._lock:
            self._queued_bytes += size
            if self._queued_bytes >= BATCH_BYTES:
                self._wake.set()

    def raise_error(self) -> None:
        """Re-raise, in the caller's thread, a failure of the committer."""
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Commit everything queued, stop the thread, and re-raise any failure."""
        if self._thread.is_alive():
            with self._lock:
                self._closing = True
                self._wake.set()
            self._queue.put(None)
            self._thread.join()
        self.raise_error()

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            self._wake.wait(GATHER_S)
            jobs: list[_Job] = []
            while item is not None:
                jobs.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            with self._lock:
                self._queued_bytes -= sum(job.size for job in jobs)
                if not self._closing and self._queued_bytes < BATCH_BYTES:
                    self._wake.clear()
            if jobs and self._error is None:
                try:
                    self._commit(jobs)
                except BaseException as exc:  # surfaced to the writer on its next call
                    self._error = exc

    def _commit(self, jobs: list[_Job]) -> None:
        """Write a batch of saved episodes' parquet files durably, then commit them with one sidecar append."""
        write_durably([(data_file(self.root, job.index), job.table) for job in jobs])
        append_bytes(self.root / SIDECAR_PATH, b"".join(job.line for job in jobs))  # the commit point
        self._on_commit([job.note for job in jobs])
