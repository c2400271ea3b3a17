"""FrameDataset: visible frames as tensors, trims and deletions honoured, delta_timestamps with padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flywheel.datasets.edits import soft_delete, trim_episode
from flywheel.datasets.torch_dataset import FrameDataset
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput

FEATURES = {"observation.state": {"dtype": "float32", "shape": [3], "names": None},
            "action": {"dtype": "float32", "shape": [2], "names": None}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for e in range(3):
            for i in range(5):
                w.add_frame({"observation.state": np.full(3, e, np.float32),
                             "action": np.array([e, i], np.float32)}, task=f"task {e}")
            w.save_episode()
    return root


def test_items_are_tensors_with_task(root: Path) -> None:
    ds = FrameDataset(root)
    assert len(ds) == 15
    item = ds[7]
    assert item["action"].dtype == torch.float32 and item["action"].tolist() == [1.0, 2.0]
    assert item["observation.state"].shape == (3,)
    assert (int(item["episode_index"]), int(item["frame_index"]), int(item["index"])) == (1, 2, 7)
    assert item["task"] == "task 1"
    assert ds[-1]["task"] == "task 2"
    with pytest.raises(IndexError):
        ds[15]


def test_trims_and_deletions_are_honoured(root: Path) -> None:
    soft_delete(root, 0)
    trim_episode(root, 2, start_frame=1, end_frame=3)
    ds = FrameDataset(root)
    assert len(ds) == 7
    assert [ds[i]["action"].tolist() for i in range(5, 7)] == [[2.0, 1.0], [2.0, 2.0]]
    assert len(FrameDataset(root, include_deleted=True)) == 12


def test_delta_timestamps_stack_and_pad_at_episode_edges(root: Path) -> None:
    trim_episode(root, 1, start_frame=1, end_frame=4)  # visible frames 1, 2, 3
    ds = FrameDataset(root, delta_timestamps={"action": [-0.2, -0.1, 0.0, 0.1]})
    first_of_ep1 = 5
    item = ds[first_of_ep1]
    assert item["action"].shape == (4, 2)
    assert item["action"][:, 1].tolist() == [1.0, 1.0, 1.0, 2.0]  # padded with the nearest visible frame
    assert item["action_is_pad"].tolist() == [True, True, False, False]
    last = ds[first_of_ep1 + 2]
    assert last["action"][:, 1].tolist() == [1.0, 2.0, 3.0, 3.0]
    assert last["action_is_pad"].tolist() == [False, False, False, True]
    assert set(last["action"][:, 0].tolist()) == {1.0}  # never crosses into another episode


def test_bad_delta_timestamps_are_refused(root: Path) -> None:
    with pytest.raises(InvalidInput, match="multiples"):
        FrameDataset(root, delta_timestamps={"action": [0.05]})
    with pytest.raises(InvalidInput) as err:
        FrameDataset(root, delta_timestamps={"gripper": [0.0]})
    assert err.value.field == "delta_timestamps.gripper"


def test_get_batch_and_dataloader(root: Path) -> None:
    ds = FrameDataset(root)
    batch = ds.get_batch([0, 14, 6])
    assert batch["action"].tolist() == [[0.0, 0.0], [2.0, 4.0], [1.0, 1.0]]
    assert batch["task"] == ["task 0", "task 2", "task 1"]
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = torch.cat([b["index"] for b in loader])
    assert sorted(seen.tolist()) == list(range(15))
