"""A ``torch.utils.data.Dataset`` over the visible frames of a dataset folder.

Trims are applied and soft-deleted episodes left out. Each item holds one tensor per feature, the
default columns (timestamp, frame_index, episode_index, index, task_index, next.reward, next.done) and
the task string. ``delta_timestamps`` stacks past/future frames of a feature, LeRobot style: for
``{"action": [0.0, 0.02, 0.04]}`` the item's ``action`` has shape (3, 8) and ``action_is_pad`` marks the
offsets that fell outside the (trimmed) episode, whose values repeat the nearest frame inside it.

Numeric columns are loaded once into memory; camera frames are decoded one episode at a time (a small
cache keeps the last few episodes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from flywheel.datasets.format import DEFAULT_FEATURES
from flywheel.datasets.reader import DatasetReader
from flywheel.errors import InvalidInput

_SCALARS = tuple(DEFAULT_FEATURES)
_VIDEO_CACHE = 4


class FrameDataset(Dataset):
    """Visible frames of a dataset as tensors.

    Args:
        root: a dataset folder, or an open ``DatasetReader``.
        delta_timestamps: feature key -> offsets in seconds (multiples of 1/fps) to stack.
        episodes: restrict to these episode indexes (default: every visible episode).
        include_deleted: keep soft-deleted episodes too.

    Raises:
        InvalidInput: an unknown feature or an offset that is not a multiple of 1/fps.
        DatasetCorruptError: an episode file is damaged (nothing is skipped).

    Example:
        >>> ds = FrameDataset(Path("my_dataset"), delta_timestamps={"action": [0.0, 0.02]})  # doctest: +SKIP
        >>> item = ds[0]  # doctest: +SKIP
        >>> item["action"].shape, item["action_is_pad"].tolist(), item["task"]  # doctest: +SKIP
        (torch.Size([2, 8]), [False, False], 'pick the cube')
    """

    def __init__(self, root: Path | DatasetReader, *, delta_timestamps: dict[str, Sequence[float]] | None = None,
                 episodes: Sequence[int] | None = None, include_deleted: bool = False) -> None:
        self.reader = root if isinstance(root, DatasetReader) else DatasetReader(Path(root))
        reader = self.reader
        self.fps = reader.fps
        self.numeric_keys = [k for k, v in reader.features.items() if v["dtype"] != "video"]
        self.video_keys = reader.video_keys
        wanted = None if episodes is None else {reader.record(i).episode_index for i in episodes}
        self.records = [r for r in reader.records
                        if (include_deleted or not r.soft_deleted) and (wanted is None or r.episode_index in wanted)
                        and r.length > 0]
        self.tasks = [r.task for r in self.records]
        keys = [*self.numeric_keys, *_SCALARS]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for rec in self.records:
            cols = reader.read_columns(rec.episode_index)
            for k in keys:
                parts[k].append(cols[k][rec.start_frame:rec.end_frame])
        lengths = np.array([r.length for r in self.records], dtype=np.int64)
        self._ends = np.cumsum(lengths)
        self._starts = self._ends - lengths
        self._n = int(self._ends[-1]) if len(lengths) else 0
        self._cols = {k: (np.concatenate(v) if v else np.zeros((0, 1))) for k, v in parts.items()}
        for k in self.numeric_keys:  # (N, n) features; scalar default columns become (N,)
            self._cols[k] = np.ascontiguousarray(self._cols[k])
        for k in _SCALARS:
            self._cols[k] = np.ascontiguousarray(self._cols[k].reshape(-1))
        self._pos = np.repeat(np.arange(len(self.records)), lengths)  # frame -> position in self.records
        self._tensors = {k: torch.from_numpy(v) for k, v in self._cols.items()}
        self._deltas = self._check_deltas(delta_timestamps or {})
        self._video_cache: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()

    def _check_deltas(self, deltas: dict[str, Sequence[float]]) -> dict[str, np.ndarray]:
        out = {}
        allowed = [*self.numeric_keys, *self.video_keys, "next.reward", "next.done"]
        for key, values in deltas.items():
            if key not in allowed:
                raise InvalidInput("is not a feature of this dataset", field=f"delta_timestamps.{key}",
                                   allowed=allowed)
            steps = np.asarray(list(values), dtype=np.float64) * self.fps
            if steps.ndim != 1 or not len(steps) or np.abs(steps - np.round(steps)).max() > 1e-4 * self.fps:
                raise InvalidInput(f"offsets must be a non-empty list of multiples of 1/fps = {1 / self.fps:g} s",
                                   field=f"delta_timestamps.{key}")
            out[key] = np.round(steps).astype(np.int64)
        return out

    def __len__(self) -> int:
        return self._n

    def _frames(self, pos: int, key: str) -> np.ndarray:
        rec = self.records[pos]
        cache_key = (rec.episode_index, key)
        frames = self._video_cache.get(cache_key)
        if frames is None:
            frames = self.reader.read_video(rec.episode_index, key)[rec.start_frame:rec.end_frame]
            self._video_cache[cache_key] = frames
            if len(self._video_cache) > _VIDEO_CACHE:
                self._video_cache.popitem(last=False)
        else:
            self._video_cache.move_to_end(cache_key)
        return frames

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not -self._n <= idx < self._n:
            raise IndexError(f"frame {idx} out of range 0..{self._n - 1}")
        idx = int(idx) % self._n
        pos = int(self._pos[idx])
        item: dict[str, Any] = {k: torch.from_numpy(self._cols[k][idx]) for k in self.numeric_keys}
        item.update({k: self._tensors[k][idx] for k in _SCALARS})
        for key in self.video_keys:
            if key not in self._deltas:
                frame = self._frames(pos, key)[idx - self._starts[pos]]
                item[key] = torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0
        for key, offsets in self._deltas.items():
            lo, hi = int(self._starts[pos]), int(self._ends[pos]) - 1
            q = idx + offsets
            item[f"{key}_is_pad"] = torch.from_numpy((q < lo) | (q > hi))
            q = np.clip(q, lo, hi)
            if key in self.video_keys:
                frames = self._frames(pos, key)[q - lo]
                item[key] = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
            else:
                item[key] = torch.from_numpy(self._cols[key][q])
        item["task"] = self.tasks[pos]
        return item

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Many frames at once, stacked (vectorised; numeric features and default columns only).

        Example:
            >>> FrameDataset(Path("my_dataset")).get_batch([0, 5, 9])["action"].shape  # doctest: +SKIP
            torch.Size([3, 8])
        """
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self._n):
            raise IndexError(f"frames must be in 0..{self._n - 1}")
        batch: dict[str, Any] = {k: torch.from_numpy(v[idx]) for k, v in self._cols.items()}
        batch["task"] = [self.tasks[p] for p in self._pos[idx]]
        return batch
