"""Feature statistics: per episode (``meta/episodes_stats.jsonl``) and aggregated for normalisation.

Per-episode stats follow LeRobot v2.1: ``{"min", "max", "mean", "std", "count"}`` per feature, each a list;
numeric features give one value per dimension, camera features one value per channel in the
``[3, 1, 1]`` nesting LeRobot uses, on pixel values scaled to [0, 1].
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flywheel.datasets.format import EPISODES_STATS_PATH, DatasetCorruptError

if TYPE_CHECKING:
    from flywheel.datasets.reader import DatasetReader

STAT_KEYS = ("min", "max", "mean", "std", "count")
_MAX_VIDEO_FRAMES = 100
_MAX_VIDEO_SIDE = 160


def _numeric_stats(values: np.ndarray) -> dict[str, list]:
    x = values.astype(np.float64, copy=False)
    return {
        "min": x.min(axis=0).tolist(), "max": x.max(axis=0).tolist(), "mean": x.mean(axis=0).tolist(),
        "std": x.std(axis=0).tolist(), "count": [len(x)],
    }


def _video_stats(frames: np.ndarray) -> dict[str, list]:
    step_t = max(1, len(frames) // _MAX_VIDEO_FRAMES)
    step_s = max(1, max(frames.shape[1:3]) // _MAX_VIDEO_SIDE)
    x = frames[::step_t, ::step_s, ::step_s].astype(np.float64) / 255.0
    per_channel = x.reshape(-1, x.shape[-1])
    s = _numeric_stats(per_channel)
    return {k: ([[[v]] for v in s[k]] if k != "count" else [len(frames)]) for k in STAT_KEYS}


def compute_episode_stats(columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Stats of every column of one episode that has a feature declaration.

    Args:
        columns: key -> (T, ...) array; camera features as (T, H, W, 3) uint8.
        features: the dataset's features (user and default).

    Example:
        >>> s = compute_episode_stats({"a": np.array([[0.0], [2.0]])}, {"a": {"dtype": "float32"}})
        >>> s["a"]["mean"], s["a"]["count"]
        ([1.0], [2])
    """
    out: dict[str, Any] = {}
    numeric: list[tuple[str, np.ndarray]] = []
    for key, values in columns.items():
        spec = features.get(key)
        if spec is None or len(values) == 0:
            continue
        if spec["dtype"] == "video":
            out[key] = _video_stats(values)
        else:
            numeric.append((key, values.reshape(len(values), -1)))
    lengths = {len(v) for _, v in numeric}
    if len(lengths) == 1:  # one pass over all numeric columns side by side
        merged = _numeric_stats(np.hstack([v.astype(np.float64, copy=False) for _, v in numeric]))
        start = 0
        for key, v in numeric:
            stop = start + v.shape[1]
            out[key] = {k: (merged[k][start:stop] if k != "count" else merged[k]) for k in STAT_KEYS}
            start = stop
    else:
        for key, v in numeric:
            out[key] = _numeric_stats(v)
    return out


def batch_numeric_stats(episodes: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """``compute_episode_stats`` of several episodes' numeric columns, one numpy pass per group of
    episodes with the same length and columns (a writer commits its episodes in batches).

    Example:
        >>> eps = [{"a": np.array([[0.0], [2.0]])}, {"a": np.array([[1.0], [3.0]])}]
        >>> [s["a"]["mean"] for s in batch_numeric_stats(eps)]
        [[1.0], [2.0]]
    """
    out: list[dict[str, Any]] = [{} for _ in episodes]
    groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
    for i, columns in enumerate(episodes):
        n = len(next(iter(columns.values()))) if columns else 0
        if n:
            groups.setdefault((tuple(columns), n), []).append(i)
    for (keys, n), members in groups.items():
        widths = [episodes[members[0]][key].reshape(n, -1).shape[1] for key in keys]
        x = np.empty((len(members), n, sum(widths)))
        for row, i in enumerate(members):
            np.concatenate([episodes[i][key].reshape(n, -1) for key in keys], axis=1, out=x[row])
        per_stat = {"min": x.min(axis=1), "max": x.max(axis=1), "mean": x.mean(axis=1), "std": x.std(axis=1)}
        values = {name: v.tolist() for name, v in per_stat.items()}
        for row, i in enumerate(members):
            start = 0
            for key, width in zip(keys, widths, strict=True):
                stop = start + width
                out[i][key] = {**{name: values[name][row][start:stop] for name in per_stat}, "count": [n]}
                start = stop
    return out


def frame_column_stats(n: int, *, fps: int, first_index: int, episode_index: int, task_index: int) -> dict[str, Any]:
    """Stats of the computed default columns of an n-frame episode, in closed form (no arrays needed).

    timestamp, frame_index and index are arithmetic sequences; episode_index and task_index constant.

    Example:
        >>> frame_column_stats(3, fps=10, first_index=5, episode_index=1, task_index=0)["index"]["mean"]
        [6.0]
    """
    spread = math.sqrt((n * n - 1) / 12.0)

    def seq(start: float, step: float) -> dict[str, list]:
        return {"min": [start], "max": [start + step * (n - 1)], "mean": [start + step * (n - 1) / 2],
                "std": [abs(step) * spread], "count": [n]}

    def const(value: float) -> dict[str, list]:
        return {"min": [value], "max": [value], "mean": [value], "std": [0.0], "count": [n]}

    return {"timestamp": seq(0.0, 1.0 / fps), "frame_index": seq(0.0, 1.0), "index": seq(float(first_index), 1.0),
            "episode_index": const(float(episode_index)), "task_index": const(float(task_index))}


def aggregate_stats(stats_list: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Combine per-episode stats into dataset stats (count-weighted mean, pooled std).

    Example:
        >>> a = {"x": {"min": [0.0], "max": [1.0], "mean": [0.5], "std": [0.5], "count": [2]}}
        >>> b = {"x": {"min": [2.0], "max": [2.0], "mean": [2.0], "std": [0.0], "count": [1]}}
        >>> float(aggregate_stats([a, b])["x"]["mean"][0])
        1.0
    """
    keys = sorted({k for s in stats_list for k in s})
    out: dict[str, dict[str, np.ndarray]] = {}
    for key in keys:
        parts = [s[key] for s in stats_list if key in s]
        counts = np.array([p["count"][0] for p in parts], dtype=np.float64)
        total = counts.sum()
        means = np.stack([np.asarray(p["mean"], np.float64) for p in parts])
        stds = np.stack([np.asarray(p["std"], np.float64) for p in parts])
        w = (counts / total).reshape(-1, *([1] * (means.ndim - 1)))
        mean = (w * means).sum(axis=0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
        out[key] = {
            "min": np.min(np.stack([np.asarray(p["min"], np.float64) for p in parts]), axis=0),
            "max": np.max(np.stack([np.asarray(p["max"], np.float64) for p in parts]), axis=0),
            "mean": mean,
            "std": np.sqrt(np.maximum(var, 0.0)),
            "count": np.array([int(total)]),
        }
    return out


def load_episode_stats(root: Path, *, skip_damaged: bool = False) -> dict[int, dict[str, Any]]:
    """Read ``meta/episodes_stats.jsonl`` as episode_index -> stats (a torn last line is ignored).

    Args:
        root: the dataset folder.
        skip_damaged: leave out every line that is not a whole stats entry (to rebuild the file,
            recomputing those episodes) instead of raising on an unparsable one before the last.

    Raises:
        DatasetCorruptError: a line before the last is not valid JSON (unless ``skip_damaged``).
    """
    path = Path(root) / EPISODES_STATS_PATH
    out: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return out
    lines = path.read_bytes().split(b"\n")
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            if skip_damaged or i >= len(lines) - 2:
                continue
            raise DatasetCorruptError(f"{path} line {i + 1} is not valid JSON", path=path) from None
        if skip_damaged and not (isinstance(entry, dict) and type(entry.get("episode_index")) is int
                                 and isinstance(entry.get("stats"), dict)):
            continue
        out[int(entry["episode_index"])] = entry["stats"]
    return out


def dataset_stats(reader: DatasetReader, *, include_deleted: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Feature statistics over the visible frames (trims applied, soft-deleted episodes left out).

    Untrimmed episodes use their stored per-episode stats; trimmed ones are recomputed from their frames.

    Example:
        >>> stats = dataset_stats(DatasetReader(Path("my_dataset")))  # doctest: +SKIP
        >>> stats["observation.state"]["mean"].shape  # doctest: +SKIP
        (64,)
    """
    stored = load_episode_stats(reader.root)
    parts = []
    for rec in reader.records:
        if rec.soft_deleted and not include_deleted:
            continue
        if rec.length == 0:
            continue
        if not rec.trimmed and rec.episode_index in stored:
            parts.append(stored[rec.episode_index])
            continue
        ep = reader.read_episode(rec.episode_index, apply_trim=True)
        parts.append(compute_episode_stats(ep.columns, reader.info["features"]))
    keys = set(reader.features) | {"next.reward", "next.done"}
    return {k: v for k, v in aggregate_stats(parts).items() if k in keys}
