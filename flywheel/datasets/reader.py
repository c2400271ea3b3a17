"""Reading a dataset folder: its info, its episode records and its episodes, damaged files reported.

Reading never skips silently: an episode whose parquet or mp4 file is missing, truncated or does not
match its record raises ``DatasetCorruptError`` naming the episode and the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.commit import payload_table, pending_tail
from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.format import (
    DEFAULT_FEATURES,
    PENDING_PATH,
    DatasetCorruptError,
    data_file,
    from_arrow,
    load_info,
    user_features,
    video_file,
    video_keys,
)
from flywheel.datasets.pending import read_payload
from flywheel.datasets.records import EpisodeRecord, load_records
from flywheel.errors import FlywheelError, NotFound


def read_parquet(path: Path, episode_index: int) -> pa.Table:
    """Read an episode file, turning any read failure into ``DatasetCorruptError``."""
    if not path.is_file():
        raise DatasetCorruptError(f"{path} is missing", episode_index=episode_index, path=path)
    try:  # ParquetFile on an OSFile: a fraction of read_table's overhead on small files
        with pa.OSFile(str(path)) as f:
            return pq.ParquetFile(f).read(use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetCorruptError(f"{path} is not a readable parquet file: {exc}",
                                  episode_index=episode_index, path=path) from exc


def table_columns(table: pa.Table, record: EpisodeRecord, features: dict[str, dict[str, Any]],
                  path: Path) -> dict[str, np.ndarray]:
    """Check an episode table against its record and the features; return every column as (T, n)."""
    idx = record.episode_index
    if table.num_rows != record.total_frames:
        raise DatasetCorruptError(f"{path} has {table.num_rows} frames, its record says {record.total_frames}",
                                  episode_index=idx, path=path)
    out: dict[str, np.ndarray] = {}
    specs = {**{k: v for k, v in features.items() if v["dtype"] != "video"}, **DEFAULT_FEATURES}
    for key, spec in specs.items():
        if key not in table.column_names:
            raise DatasetCorruptError(f"{path} lacks column {key!r}", episode_index=idx, path=path)
        try:
            out[key] = from_arrow(table.column(key), spec)
        except (ValueError, pa.ArrowException) as exc:
            raise DatasetCorruptError(f"{path} column {key!r} does not match its feature: {exc}",
                                      episode_index=idx, path=path) from exc
    ep_col = out["episode_index"]
    if len(ep_col) and (ep_col[0, 0] != idx or ep_col[-1, 0] != idx):
        raise DatasetCorruptError(f"{path} holds episode {int(ep_col[0, 0])}", episode_index=idx, path=path)
    return out


class DatasetReader:
    """A read-only view of a dataset folder: a snapshot of its records taken when opened.

    Attributes:
        root: the dataset folder.
        info: the ``meta/info.json`` dict.
        features: the user features (key -> {dtype, shape, names}), without the default columns.
        fps: frames per second.
        records: episode records in episode_index order, soft-deleted ones included.

    Example:
        >>> reader = DatasetReader(Path("my_dataset"))  # doctest: +SKIP
        >>> ep = reader.read_episode(0)  # doctest: +SKIP
        >>> ep.columns["action"].shape  # doctest: +SKIP
        (200, 8)
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.info = load_info(self.root)
        self.features = user_features(self.info["features"])
        self.fps = int(self.info["fps"])
        # Committed records, plus episodes saved but not yet committed whose data is whole.
        self.records: list[EpisodeRecord] = load_records(self.root)
        tail = pending_tail(self.root, self.records, self.video_keys)
        self.records += [record for record, _ in tail]
        self._pending = {record.episode_index: entry for record, entry in tail}

    @property
    def video_keys(self) -> list[str]:
        """The camera features."""
        return video_keys(self.features)

    @property
    def num_episodes(self) -> int:
        """Committed episodes, soft-deleted ones included."""
        return len(self.records)

    def record(self, episode_index: int) -> EpisodeRecord:
        """The record of one episode.

        Raises:
            NotFound: no committed episode has this index.
        """
        if isinstance(episode_index, bool) or not isinstance(episode_index, int | np.integer) or not (
            0 <= episode_index < len(self.records)
        ):
            raise NotFound("episode", episode_index, hint=f"episodes are 0..{len(self.records) - 1}")
        return self.records[int(episode_index)]

    def read_columns(self, episode_index: int) -> dict[str, np.ndarray]:
        """Every parquet column of an episode (untrimmed) as (T, n) arrays, checked against its record."""
        rec = self.record(episode_index)
        path = data_file(self.root, rec.episode_index)
        entry = self._pending.get(rec.episode_index)
        if entry is not None and not path.is_file():  # saved, not committed yet: its bytes are in the log
            table = payload_table(read_payload(self.root / PENDING_PATH, entry), entry)
            if table is not None:  # (else it was committed meanwhile)
                return table_columns(table, rec, self.features, path)
        return table_columns(read_parquet(path, rec.episode_index), rec, self.features, path)

    def read_video(self, episode_index: int, key: str) -> np.ndarray:
        """The decoded (T, H, W, 3) frames of one camera feature of an episode (untrimmed)."""
        from flywheel.datasets.video import decode_video

        rec = self.record(episode_index)
        path = video_file(self.root, key, rec.episode_index)
        if not path.is_file():
            raise DatasetCorruptError(f"{path} is missing", episode_index=rec.episode_index, path=path)
        try:
            frames = decode_video(path)
        except FlywheelError as exc:
            raise DatasetCorruptError(exc.message, episode_index=rec.episode_index, path=path) from exc
        if len(frames) != rec.total_frames:
            raise DatasetCorruptError(f"{path} has {len(frames)} frames, its record says {rec.total_frames}",
                                      episode_index=rec.episode_index, path=path)
        return frames

    def read_episode(self, episode_index: int, *, apply_trim: bool = True,
                     include_videos: bool = True) -> EpisodeArrays:
        """One episode as columns: the user features plus ``next.reward`` and ``next.done``.

        Args:
            episode_index: which episode (soft-deleted ones can be read by index).
            apply_trim: keep only frames ``start_frame..end_frame`` of the record.
            include_videos: decode camera features too.

        Returns:
            EpisodeArrays whose metadata holds the record's fields (episode_index, episode_id,
            chunk_id, source, start_frame, end_frame, ...) merged over its free-form metadata.

        Raises:
            NotFound: no such episode.
            DatasetCorruptError: a file of the episode is missing or damaged.

        Example:
            >>> DatasetReader(Path("my_dataset")).read_episode(0).task  # doctest: +SKIP
            'pick the cube'
        """
        rec = self.record(episode_index)
        cols = self.read_columns(rec.episode_index)
        keys = [k for k, v in self.features.items() if v["dtype"] != "video"] + ["next.reward", "next.done"]
        columns = {k: cols[k] for k in keys}
        if include_videos:
            for key in self.video_keys:
                columns[key] = self.read_video(rec.episode_index, key)
        if apply_trim:
            columns = {k: v[rec.start_frame:rec.end_frame] for k, v in columns.items()}
        meta = rec.to_dict()
        extra = meta.pop("metadata")
        return EpisodeArrays(columns=columns, task=rec.task, success=rec.success, metadata={**extra, **meta})

    def iter_episodes(self, *, include_deleted: bool = False, apply_trim: bool = True,
                      include_videos: bool = True) -> Iterator[EpisodeArrays]:
        """Read the episodes in index order, soft-deleted ones left out unless asked for.

        Example:
            >>> sum(ep.num_frames for ep in DatasetReader(Path("ds")).iter_episodes())  # doctest: +SKIP
            1200
        """
        for rec in self.records:
            if rec.soft_deleted and not include_deleted:
                continue
            yield self.read_episode(rec.episode_index, apply_trim=apply_trim, include_videos=include_videos)
