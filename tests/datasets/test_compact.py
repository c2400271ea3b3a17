"""Compaction: soft-deleted episodes gone, trims applied, indexes renumbered, records kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from flywheel.datasets.compact import build_dirs, compact
from flywheel.datasets.edits import soft_delete, trim_episode
from flywheel.datasets.format import data_file
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.verify import verify
from flywheel.datasets.writer import create_dataset, open_for_append
from flywheel.errors import Conflict

FEATURES = {"action": {"dtype": "float32", "shape": [2], "names": None}}


def make(root: Path, tasks: list[str]) -> None:
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for e, task in enumerate(tasks):
            for i in range(8):
                w.add_frame({"action": np.array([e, i], np.float32)}, task=task)
            w.save_episode(success=e % 2 == 0)


def test_compaction_applies_deletes_and_trims_and_renumbers(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make(root, ["a", "b", "c", "b"])
    before = DatasetReader(root).records
    soft_delete(root, [0])
    trim_episode(root, 2, start_frame=3, end_frame=6)
    report = compact(root)
    assert (report.episodes_before, report.episodes_after) == (4, 3)
    assert (report.frames_before, report.frames_after) == (32, 19)
    assert report.index_map == {1: 0, 2: 1, 3: 2}
    assert report.removed_episode_ids == [before[0].episode_id]
    reader = DatasetReader(root)
    assert [r.episode_id for r in reader.records] == [before[i].episode_id for i in (1, 2, 3)]
    assert [(r.total_frames, r.start_frame, r.end_frame, r.soft_deleted) for r in reader.records] == [
        (8, 0, 8, False), (3, 0, 3, False), (8, 0, 8, False)]
    assert [r.success for r in reader.records] == [False, True, False]
    np.testing.assert_array_equal(reader.read_episode(1).columns["action"][:, 1], [3, 4, 5])
    t = pq.read_table(data_file(root, 1)).to_pydict()
    assert t["index"] == [8, 9, 10] and t["frame_index"] == [0, 1, 2] and t["episode_index"] == [1, 1, 1]
    assert t["next.done"] == [False, False, True] and t["task_index"] == [1, 1, 1]
    assert t["timestamp"] == pytest.approx([0.0, 0.1, 0.2])
    assert not data_file(root, 3).exists()
    info = json.loads((root / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 19, 2)
    tasks = [json.loads(x)["task"] for x in (root / "meta/tasks.jsonl").read_text().splitlines()]
    assert tasks == ["b", "c"]
    assert verify(root).ok and verify(root).problems == []
    assert build_dirs(root) == []


def test_appending_after_compaction_continues_numbering(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make(root, ["a", "a", "a"])
    soft_delete(root, 1)
    compact(root)
    with open_for_append(root) as w:
        assert w.chunk_id == 1
        w.add_frame({"action": np.zeros(2, np.float32)}, task="a")
        rec = w.save_episode()
    assert rec.episode_index == 2
    assert pq.read_table(data_file(root, 2)).column("index").to_pylist() == [16]


def test_compaction_refused_while_a_writer_is_open(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make(root, ["a"])
    with open_for_append(root), pytest.raises(Conflict):
        compact(root)


def test_video_episodes_are_trimmed_and_kept(tmp_path: Path) -> None:
    pytest.importorskip("flywheel.datasets.video")
    root = tmp_path / "ds"
    feats = {**FEATURES, "cam": {"dtype": "video", "shape": [8, 8, 3], "names": None}}
    with create_dataset(root, features=feats, fps=10, robot_type="arm") as w:
        for _ in range(2):
            for i in range(6):
                w.add_frame({"action": np.zeros(2, np.float32), "cam": np.full((8, 8, 3), 40 * i, np.uint8)}, task="t")
            w.save_episode()
    trim_episode(root, 0, start_frame=2, end_frame=5)
    compact(root)
    reader = DatasetReader(root)
    cam = reader.read_episode(0).columns["cam"]
    assert cam.shape[0] == 3 and abs(int(cam[0, 0, 0, 0]) - 80) <= 3
    assert reader.read_episode(1).columns["cam"].shape[0] == 6
    assert verify(root).ok


def test_repeated_compactions_keep_the_original_frame_range(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make(root, ["a", "a"])
    trim_episode(root, 1, start_frame=2, end_frame=7)
    compact(root)
    trim_episode(root, 1, start_frame=1, end_frame=3)
    compact(root)
    rec = DatasetReader(root).records[1]
    assert rec.metadata["compacted_from"] == {"episode_index": 1, "start_frame": 3, "end_frame": 5}
    np.testing.assert_array_equal(DatasetReader(root).read_episode(1).columns["action"][:, 1], [3, 4])
