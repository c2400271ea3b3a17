"""Feature statistics: per episode and aggregated over the visible frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.edits import soft_delete, trim_episode
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.stats import aggregate_stats, batch_numeric_stats, compute_episode_stats, dataset_stats
from flywheel.datasets.writer import create_dataset

FEATURES = {"action": {"dtype": "float32", "shape": [2], "names": None}}


def test_aggregate_equals_stats_of_concatenation() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(i, i + 1, size=(n, 2)) for i, n in enumerate([5, 17, 3])]
    agg = aggregate_stats([compute_episode_stats({"x": p}, {"x": {"dtype": "float64"}}) for p in parts])["x"]
    full = np.concatenate(parts)
    np.testing.assert_allclose(agg["mean"], full.mean(0))
    np.testing.assert_allclose(agg["std"], full.std(0))
    np.testing.assert_allclose(agg["min"], full.min(0))
    np.testing.assert_allclose(agg["max"], full.max(0))
    assert agg["count"].tolist() == [25]


def test_dataset_stats_follow_trims_and_deletions(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rng = np.random.default_rng(1)
    data = [rng.normal(size=(10, 2)).astype(np.float32) for _ in range(3)]
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for d in data:
            for row in d:
                w.add_frame({"action": row}, task="t")
            w.save_episode()
    soft_delete(root, 0)
    trim_episode(root, 2, start_frame=2, end_frame=8)
    stats = dataset_stats(DatasetReader(root))
    visible = np.concatenate([data[1], data[2][2:8]]).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["mean"], visible.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], visible.std(0), rtol=1e-5)
    assert stats["action"]["count"].tolist() == [16]
    assert set(stats) == {"action", "next.reward", "next.done"}


def test_video_stats_are_per_channel_in_unit_range() -> None:
    frames = np.zeros((4, 6, 6, 3), np.uint8)
    frames[..., 1] = 255
    s = compute_episode_stats({"cam": frames}, {"cam": {"dtype": "video"}})["cam"]
    assert s["mean"] == [[[0.0]], [[1.0]], [[0.0]]] and s["count"] == [4]
    assert s["std"] == [[[pytest.approx(0.0)]], [[pytest.approx(0.0)]], [[pytest.approx(0.0)]]]


def test_closed_form_default_column_stats_match_the_columns() -> None:
    from flywheel.datasets.stats import frame_column_stats

    n, fps = 37, 30
    frame = np.arange(n)
    cols = {"timestamp": (frame / fps).astype(np.float32), "frame_index": frame, "index": frame + 1000,
            "episode_index": np.full(n, 4), "task_index": np.full(n, 2)}
    feats = {k: {"dtype": "float64"} for k in cols}
    measured = compute_episode_stats({k: v.reshape(-1, 1) for k, v in cols.items()}, feats)
    closed = frame_column_stats(n, fps=fps, first_index=1000, episode_index=4, task_index=2)
    for key in cols:
        for stat in ("min", "max", "mean", "std"):
            assert closed[key][stat] == pytest.approx(measured[key][stat], rel=1e-6, abs=1e-6), (key, stat)
        assert closed[key]["count"] == [n]


def test_batch_stats_equal_per_episode_stats_exactly() -> None:
    rng = np.random.default_rng(1)
    feats = {"a": {"dtype": "float32"}, "r": {"dtype": "float32"}, "done": {"dtype": "bool"}, "n": {"dtype": "int64"}}
    episodes = []
    for i in range(12):
        t = (200, 200, 37)[i % 3]  # two lengths share a pass, one has its own
        episodes.append({"a": rng.standard_normal((t, 16)).astype(np.float32) * 1e3,
                         "r": rng.standard_normal((t, 1)).astype(np.float32), "done": rng.random((t, 1)) > 0.5,
                         "n": rng.integers(0, 10**12, (t, 1))})
    assert batch_numeric_stats(episodes) == [compute_episode_stats(e, feats) for e in episodes]
    assert batch_numeric_stats([{}]) == [{}]
