"""Compaction (hard delete): rewrite a dataset without soft-deleted episodes and with trims applied.

The new dataset is built next to the old one in ``.<name>.compact-<pid>``, made durable, then swapped in
with one atomic directory exchange (``renameat2(RENAME_EXCHANGE)``); the old folder is deleted last. A
crash at any moment leaves either the old dataset or the new one at ``root``, complete, plus perhaps a
leftover build folder that the next writer or compaction removes. Episodes are renumbered 0..N-1 in
their old order, ``index`` runs over the kept frames, tasks are renumbered in order of first use; each
record keeps its episode_id, chunk_id, created_at, task, success and source, and gets
``metadata["compacted_from"]``: its episode_index before this compaction and the frame range it keeps,
counted in the frames of the episode as first recorded (so it stays meaningful over several compactions).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.commit import recover
from flywheel.datasets.format import (
    EDIT_LOCK,
    SIDECAR_PATH,
    WRITE_LOCK,
    arrow_schema,
    data_file,
    load_info,
    make_info,
    to_arrow,
    user_features,
    video_file,
    video_keys,
)
from flywheel.datasets.meta import tasks_of, write_all
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.records import (
    EpisodeRecord,
    add_event,
    encode_events,
    load_records,
    read_events,
    schema_event,
    schema_header,
)
from flywheel.datasets.stats import compute_episode_stats, load_episode_stats
from flywheel.durable import fsync_dir, locked, write_atomic

_BUILD_MARK = ".compact-"


@dataclass
class CompactReport:
    """What a compaction did.

    Attributes:
        episodes_before: committed episodes before (soft-deleted included).
        episodes_after: episodes after.
        frames_before: frames in the files before.
        frames_after: frames after (the visible frames before).
        removed_episode_ids: episode ids of the soft-deleted episodes that are gone.
        index_map: old episode_index -> new episode_index of every kept episode.
    """

    episodes_before: int
    episodes_after: int
    frames_before: int
    frames_after: int
    removed_episode_ids: list[str]
    index_map: dict[int, int]


def build_dirs(root: Path) -> list[Path]:
    """Leftover compaction folders of a dataset (complete or not, they are never the dataset)."""
    root = Path(root).absolute()
    return sorted(p for p in root.parent.glob(f".{root.name}{_BUILD_MARK}*") if p.is_dir())


def remove_build_dirs(root: Path) -> None:
    """Delete leftovers of an interrupted compaction; call only while holding the write lock."""
    for path in build_dirs(root):
        shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories atomically (Linux renameat2), or by two renames where it is missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        at_fdcwd, rename_exchange = -100, 2
        if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            fsync_dir(a.parent)
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(a))
    # Fallback: a short window where `a` is missing; the old data is never lost.
    parked = a.with_name(f".{a.name}{_BUILD_MARK}old-{os.getpid()}")
    os.rename(a, parked)
    os.rename(b, a)
    os.rename(parked, b)
    fsync_dir(a.parent)


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pq.write_table(table, f, use_dictionary=False, write_statistics=False)
        f.flush()
        os.fsync(f.fileno())


def _copy_video(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # episode files are immutable: sharing the inode is safe
    except OSError:
        shutil.copyfile(src, dst)
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def compact(root: Path) -> CompactReport:
    """Rewrite the dataset without its soft-deleted episodes and with trims applied, crash-safe.

    Raises:
        NotFound: no dataset at ``root``.
        Conflict: a writer holds the dataset.
        DatasetCorruptError: a kept episode's file is damaged (the dataset is left as it was).

    Example:
        >>> report = compact(Path("my_dataset"))  # doctest: +SKIP
        >>> report.episodes_after  # doctest: +SKIP
        41
    """
    root = Path(root).absolute()
    load_info(root)
    with locked(root / WRITE_LOCK, what=f"dataset {root}"), \
            locked(root / EDIT_LOCK, what=f"dataset {root}", blocking=True):
        remove_build_dirs(root)
        feats = user_features(load_info(root)["features"])
        # A writer killed earlier may have left saved, uncommitted episodes: commit them first.
        recover(root, load_records(root), video_keys(feats))
        build = root.with_name(f".{root.name}{_BUILD_MARK}{os.getpid()}")
        report = _build(root, build)
        _exchange(root, build)  # `build` now holds the old dataset
    shutil.rmtree(build, ignore_errors=True)
    return report


def _build(root: Path, build: Path) -> CompactReport:
    reader = DatasetReader(root)
    info, fps, features = reader.info, reader.fps, reader.features
    events, _ = read_events(root)
    old_header = schema_event(events) or {}
    header = schema_header(old_header.get("features", features), fps, info["robot_type"])
    stored = load_episode_stats(root)
    kept = [r for r in reader.records if not r.soft_deleted]
    tasks = tasks_of(kept)
    schema = arrow_schema(features)
    numeric = [k for k, v in features.items() if v["dtype"] != "video"]
    (build / "meta").mkdir(parents=True)
    new_records: list[EpisodeRecord] = []
    all_stats: dict[int, dict[str, Any]] = {}
    frame_total = 0
    for new_index, rec in enumerate(kept):
        cols = reader.read_columns(rec.episode_index)
        sl = slice(rec.start_frame, rec.end_frame)
        n = rec.length
        frame = np.arange(n, dtype=np.int64)
        done = cols["next.done"][sl].reshape(-1).copy()
        done[-1] = True
        new_cols: dict[str, np.ndarray] = {k: cols[k][sl] for k in numeric}
        new_cols.update({
            "timestamp": (frame / fps).astype(np.float32).reshape(-1, 1),
            "frame_index": frame.reshape(-1, 1),
            "episode_index": np.full((n, 1), new_index, np.int64),
            "index": (frame + frame_total).reshape(-1, 1),
            "task_index": np.full((n, 1), tasks[rec.task], np.int64),
            "next.reward": cols["next.reward"][sl],
            "next.done": done.reshape(-1, 1),
        })
        specs = {**features, **info["features"]}
        table = pa.Table.from_arrays([to_arrow(new_cols[f.name], specs[f.name]) for f in schema], schema=schema)
        _write_parquet(data_file(build, new_index), table)
        stats = compute_episode_stats(new_cols, info["features"])
        for key in reader.video_keys:
            src, dst = video_file(root, key, rec.episode_index), video_file(build, key, new_index)
            if rec.trimmed:
                from flywheel.datasets.video import encode_video

                frames = reader.read_video(rec.episode_index, key)[sl]
                encode_video(frames, dst, fps)
                stats[key] = compute_episode_stats({key: frames}, features)[key]
            else:
                _copy_video(src, dst)
                old = stored.get(rec.episode_index, {}).get(key)
                stats[key] = old or compute_episode_stats({key: reader.read_video(rec.episode_index, key)},
                                                          features)[key]
        all_stats[new_index] = stats
        offset = int(rec.metadata.get("compacted_from", {}).get("start_frame", 0))
        meta = {**rec.metadata, "compacted_from": {"episode_index": rec.episode_index,
                                                   "start_frame": offset + rec.start_frame,
                                                   "end_frame": offset + rec.end_frame}}
        new_records.append(replace(rec, episode_index=new_index, total_frames=n, start_frame=0, end_frame=n,
                                   metadata=meta))
        frame_total += n
    new_info = make_info(features=features, fps=fps, robot_type=info["robot_type"],
                         total_episodes=len(new_records), total_frames=frame_total, total_tasks=len(tasks))
    write_atomic(build / SIDECAR_PATH, encode_events([header, *(add_event(r) for r in new_records)]))
    write_all(build, new_info, new_records, all_stats)
    for path in sorted([build, *(p for p in build.rglob("*") if p.is_dir())], key=lambda p: -len(p.parts)):
        fsync_dir(path)
    return CompactReport(
        episodes_before=len(reader.records), episodes_after=len(new_records),
        frames_before=sum(r.total_frames for r in reader.records), frames_after=frame_total,
        removed_episode_ids=[r.episode_id for r in reader.records if r.soft_deleted],
        index_map={r.episode_index: i for i, r in enumerate(kept)},
    )
