"""Episodes saved under Flywheel's earlier pending journal, recovered through today's commit path.

Writers before the pending log (``pending.py``) kept each saved but uncommitted episode in files of
their own, none of them fsynced::

    meta/flywheel_pending.jsonl        its "add" event, one JSON line per episode, exactly as the sidecar
                                       holds it; appended once the episode's data was complete
    meta/pending/episode_XXXXXX.bin    its columns raw (the numeric user columns, then the default ones,
                                       all (T, n)): a JSON header line
                                       ``{"columns": [[key, dtype.str, shape], ...]}``, then each array's
                                       bytes, C order, back to back

(the first of those writers kept no ``.bin`` file: it wrote the parquet file under its final name).
Their committer wrote the parquet file durably, appended the event to the sidecar (the commit point) and
deleted the ``.bin`` file; the journal itself was emptied only when a writer opened or closed. So a
dataset killed while such a writer ran may hold journaled episodes committed already, then saved ones,
then a line (or a ``.bin`` file without a line) the kill cut short.

``recover_legacy``, run by ``commit.recover`` before the pending log is recovered, reads those leftovers
as the old code did: the events that continue the committed records, in order, up to the first one that
is torn or whose data is not whole (a ``.bin`` file as long as its header says, or a whole parquet file,
and its mp4 files). It hands them to ``commit.commit_saved``, which commits them like any pending
episode (the same parquet bytes, sidecar event and, at the writer's open, stats), and removes the old
files only after that, so a crash in between finds them committed and adds nothing twice.

Leftovers that an open unaware of this format has overtaken (a pending log of its own, or a committed
episode with another id at a journaled index) no longer fit their indexes: they are left untouched.

Example:
    >>> records = recover_legacy(Path("my_dataset"), load_records(Path("my_dataset")), [])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flywheel.datasets.commit import (
    SavedEpisode,
    commit_saved,
    encode_parquet,
    episode_table,
    parquet_rows,
    videos_written,
)
from flywheel.datasets.format import (
    DEFAULT_FEATURES,
    PENDING_PATH,
    data_file,
    load_info,
    user_features,
)
from flywheel.datasets.pending import read_entries
from flywheel.datasets.records import EpisodeRecord, read_events, record_fields, record_from_event, schema_event
from flywheel.durable import fsync_dir

#: The earlier journal of saved episodes' "add" events.
LEGACY_PENDING_PATH = "meta/flywheel_pending.jsonl"
#: The folder of the earlier raw column files.
LEGACY_RAW_DIR = "meta/pending"
#: A raw file's header line is never longer than this.
_HEADER_LIMIT = 1 << 20

#: Column key -> (dtype, columns per frame) an episode's raw file must hold.
_Specs = dict[str, tuple[np.dtype, int]]


def raw_file(root: Path, episode_index: int) -> Path:
    """The earlier raw column file of an episode.

    Example:
        >>> raw_file(Path("ds"), 3).as_posix()
        'ds/meta/pending/episode_000003.bin'
    """
    return Path(root) / LEGACY_RAW_DIR / f"episode_{episode_index:06d}.bin"


def _raw_layout(path: Path) -> tuple[int, list[tuple[str, np.dtype, tuple[int, ...]]]] | None:
    """Where a raw file's column bytes start and its columns, or None if it is missing or not whole."""
    try:
        with open(path, "rb") as f:
            line = f.readline(_HEADER_LIMIT)
            size = os.fstat(f.fileno()).st_size
        cols = [(str(k), np.dtype(dt), tuple(int(d) for d in shape)) for k, dt, shape in json.loads(line)["columns"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not line.endswith(b"\n") or any(dt.hasobject for _, dt, _ in cols):
        return None
    expected = len(line) + sum(dt.itemsize * int(np.prod(shape)) for _, dt, shape in cols)
    return (len(line), cols) if size == expected else None


def _raw_whole(path: Path, specs: _Specs, rows: int) -> bool:
    """Whether a raw file is whole and holds every parquet column, (rows, n) of the feature's dtype."""
    layout = _raw_layout(path)
    if layout is None:
        return False
    found = {key: (dtype, shape) for key, dtype, shape in layout[1]}
    return all(key in found and found[key] == (dtype, (rows, n)) for key, (dtype, n) in specs.items())


def read_raw(path: Path) -> dict[str, np.ndarray] | None:
    """The columns of a raw file, key -> array; None if it is missing or not whole."""
    layout = _raw_layout(path)
    if layout is None:
        return None
    offset, cols = layout
    try:
        data = path.read_bytes()
    except OSError:
        return None
    out = {}
    for key, dtype, shape in cols:
        count = int(np.prod(shape))
        if offset + count * dtype.itemsize > len(data):  # cut since the layout was read
            return None
        out[key] = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
        offset += count * dtype.itemsize
    return out


def _parquet_of_raw(path: Path, features: dict[str, dict[str, Any]]) -> pa.Buffer | None:
    """The parquet bytes today's writer makes of an episode's raw columns; None if the file is gone."""
    columns = read_raw(path)
    return None if columns is None else encode_parquet(episode_table(columns, features))


def _journal_events(path: Path) -> list[Any]:
    """The whole lines of the journal, parsed, up to the first one that is torn or not JSON."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    events = []
    for line in data.split(b"\n")[:-1]:  # what follows the last newline is a cut line (or nothing)
        try:
            events.append(json.loads(line))
        except ValueError:
            break
    return events


def _complete(root: Path, record: EpisodeRecord, video_keys: list[str], specs: _Specs) -> bool:
    """Whether a journaled episode's mp4 files are there and its parquet data is whole (file or raw)."""
    idx = record.episode_index
    if not videos_written(root, idx, video_keys):
        return False
    return parquet_rows(data_file(root, idx)) == record.total_frames or _raw_whole(
        raw_file(root, idx), specs, record.total_frames)


def legacy_tail(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[SavedEpisode] | None:
    """The journaled episodes that continue the committed ones, in order, up to the first incomplete one.

    Returns:
        What ``commit.commit_saved`` takes, or None if the leftovers were overtaken (see the module
        docstring).
    """
    events = _journal_events(root / LEGACY_PENDING_PATH)
    if not events:
        return []
    sidecar = read_events(root)[0]
    header = schema_event(sidecar)
    features = user_features(header["features"] if header else load_info(root)["features"])
    specs = {k: (np.dtype(v["dtype"]), int(v["shape"][0]))
             for k, v in {**features, **DEFAULT_FEATURES}.items() if v["dtype"] != "video"}
    fields = record_fields(sidecar[:1])
    tail: list[SavedEpisode] = []
    for event in events:
        if type(event) is not list:
            continue
        try:
            record = record_from_event(event, fields)
        except (TypeError, ValueError):
            break
        idx = record.episode_index
        due = len(records) + len(tail)
        if 0 <= idx < len(records):
            if records[idx].episode_id != record.episode_id:
                return None  # its index holds another episode now
            continue  # committed already (by the old committer, or by a recovery cut short)
        if idx != due or not _complete(root, record, video_keys, specs):
            break
        tail.append((record, event, partial(_parquet_of_raw, raw_file(root, idx), features)))
    return tail


def clear_legacy(root: Path) -> None:
    """Remove the earlier journal and raw files (once everything in them is committed or dropped)."""
    (root / LEGACY_PENDING_PATH).unlink(missing_ok=True)
    shutil.rmtree(root / LEGACY_RAW_DIR, ignore_errors=True)
    fsync_dir(root / "meta")


def recover_legacy(root: Path, records: list[EpisodeRecord], video_keys: list[str]) -> list[EpisodeRecord]:
    """Commit the whole episodes an earlier writer's journal holds, then remove its files.

    Call with the folder's write and edit locks held, before the pending log is recovered. Returns the
    committed records after recovery (``records`` itself if there was nothing to recover).
    """
    root = Path(root)
    if not (root / LEGACY_PENDING_PATH).exists() and not (root / LEGACY_RAW_DIR).exists():
        return records
    if read_entries(root / PENDING_PATH):
        return records  # a writer unaware of the journal has saved since: its indexes are taken
    tail = legacy_tail(root, records, video_keys)
    if tail is None:
        return records
    commit_saved(root, tail, video_keys)  # durable and committed before the old files go
    clear_legacy(root)
    return records + [record for record, _, _ in tail]
