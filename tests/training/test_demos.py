"""Recording demonstrations: the expert's episodes land in a dataset, seeded, counted and described."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.reader import DatasetReader
from flywheel.errors import Conflict, InvalidInput
from flywheel.training.demos import record_demos
from flywheel.training.envs import features_for, make_env
from flywheel.training.evaluation import evaluate

TRACK = {"track": "warehouse", "max_steps": 60, "random_start": True}


def test_expert_demos_are_written_with_their_features_counts_and_outcomes(tmp_path: Path) -> None:
    rec = record_demos(tmp_path / "ds", "flywheel/Track-v0", TRACK, episodes=3, seed=5)

    assert rec.env_episodes == 3 and rec.env_steps == 180 and len(rec.records) == 3
    reader = DatasetReader(tmp_path / "ds")
    assert reader.features == features_for(make_env("flywheel/Track-v0", TRACK))
    assert reader.fps == 20  # the task's control rate
    episodes = list(reader.iter_episodes())
    assert [ep.metadata["seed"] for ep in episodes] == [5, 6, 7]
    assert all(ep.metadata["source"] == "expert" and ep.metadata["terminated"] is False for ep in episodes)
    # the recorded rewards are the expert's own returns on those seeds
    expert = evaluate("expert", "flywheel/Track-v0", TRACK, episodes=3, seed=5, record=False)
    recorded = [float(ep.columns["next.reward"].sum()) for ep in episodes]
    assert recorded == pytest.approx(expert.returns, rel=1e-5)
    assert rec.returns == pytest.approx(expert.returns, rel=1e-5)
    assert rec.mean_return > 5.0  # three seconds of driving from a standstill


def test_success_is_recorded_per_episode(tmp_path: Path) -> None:
    rec = record_demos(tmp_path / "ds", "flywheel/ReachyLookAt-v0", episodes=1, seed=0)
    assert rec.success_rate == 1.0 and rec.records[0].success is True and rec.records[0].total_frames == 100


def test_same_seed_same_demonstrations(tmp_path: Path) -> None:
    a = record_demos(tmp_path / "a", "flywheel/Track-v0", TRACK, episodes=1, seed=3)
    b = record_demos(tmp_path / "b", "flywheel/Track-v0", TRACK, episodes=1, seed=3)
    c = record_demos(tmp_path / "c", "flywheel/Track-v0", TRACK, episodes=1, seed=4)
    act = [DatasetReader(r.root).read_episode(0).columns["action"] for r in (a, b, c)]
    assert np.array_equal(act[0], act[1]) and not np.array_equal(act[0], act[2])


def test_discrete_demos_record_action_indices(tmp_path: Path) -> None:
    record_demos(tmp_path / "ds", "flywheel/Track-v0", TRACK, episodes=1, discretize=(5, 3))
    ep = DatasetReader(tmp_path / "ds").read_episode(0)
    assert ep.columns["action"].dtype == np.int64 and ep.columns["action"].shape == (60, 1)
    assert set(np.unique(ep.columns["action"])) <= set(range(15)) and len(np.unique(ep.columns["action"])) > 1


def test_bad_input_is_refused_and_an_existing_dataset_kept(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        record_demos(tmp_path / "x", "flywheel/Track-v0", episodes=0)
    assert caught.value.field == "episodes"
    with pytest.raises(InvalidInput) as caught:
        record_demos(tmp_path / "x", "flywheel/Nope-v0", episodes=1)
    assert caught.value.field == "env_id"
    assert not (tmp_path / "x").exists()
    record_demos(tmp_path / "ds", "flywheel/Track-v0", TRACK, episodes=1)
    with pytest.raises(Conflict):
        record_demos(tmp_path / "ds", "flywheel/Track-v0", TRACK, episodes=1)
    assert DatasetReader(tmp_path / "ds").num_episodes == 1
