"""Damaged files are reported with the episode named; reading raises instead of skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.format import DatasetCorruptError, data_file
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.torch_dataset import FrameDataset
from flywheel.datasets.verify import verify
from flywheel.datasets.writer import create_dataset

FEATURES = {"action": {"dtype": "float32", "shape": [2], "names": None}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for _ in range(3):
            for i in range(20):
                w.add_frame({"action": np.full(2, i, np.float32)}, task="t")
            w.save_episode()
    return root


def test_healthy_dataset_verifies(root: Path) -> None:
    report = verify(root)
    assert report.ok and report.episodes_checked == 3 and report.problems == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_damaged_parquet_is_reported_and_read_raises(root: Path, damage: str) -> None:
    path = data_file(root, 1)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(data[:100] + b"\x00" * (len(data) - 100))
    else:
        path.unlink()
    report = verify(root)
    assert not report.ok and report.damaged_episodes == [1]
    assert "episode 1" in str(report.problems[0]) and str(path) in str(report.problems[0].path)
    reader = DatasetReader(root)
    with pytest.raises(DatasetCorruptError) as err:
        reader.read_episode(1)
    assert err.value.episode_index == 1
    with pytest.raises(DatasetCorruptError):
        list(reader.iter_episodes())
    with pytest.raises(DatasetCorruptError):
        FrameDataset(root)


def test_file_of_another_episode_is_detected(root: Path) -> None:
    data_file(root, 2).write_bytes(data_file(root, 0).read_bytes())
    report = verify(root)
    assert report.damaged_episodes == [2] and "holds episode 0" in report.problems[0].message


def test_leftover_files_are_warnings(root: Path) -> None:
    (root / "data/chunk-000/episode_000007.parquet").write_bytes(b"x")
    report = verify(root)
    assert report.ok and [p.severity for p in report.problems] == ["warning"]
