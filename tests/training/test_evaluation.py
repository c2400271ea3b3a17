"""The evaluation path: honest numbers (expert far above random), consistent returns/lengths, recorded episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput
from flywheel.training.base import EvalSummary
from flywheel.training.evaluation import evaluate, generalisation_gap

TRACK = {"track": "mountain", "max_steps": 300, "random_start": True}


def test_expert_scores_far_above_random_on_track() -> None:
    expert = evaluate("expert", "flywheel/Track-v0", TRACK, episodes=3, seed=0)
    box = gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32), seed=0)
    rand = evaluate(lambda obs: box.sample(), "flywheel/Track-v0", TRACK, episodes=3, seed=0)
    assert expert.mean_return > 50.0 and expert.mean_return > 5 * max(rand.mean_return, 1.0)
    assert len(set(expert.returns)) == 3  # seeds seed + i: three different starts
    assert expert.lengths == [300, 300, 300]  # never leaves the road
    assert expert.task_metrics["mean_abs_cte"] < 0.5 * rand.task_metrics["mean_abs_cte"]
    assert expert.task_metrics["mean_speed"] > 3.0


def test_expert_scores_far_above_random_on_reachy_look_at() -> None:
    expert = evaluate("expert", "flywheel/ReachyLookAt-v0", episodes=2, seed=0)
    box = gym.spaces.Box(-1, 1, (4,), np.float32, seed=0)
    rand = evaluate(lambda obs: box.sample(), "flywheel/ReachyLookAt-v0", episodes=2, seed=0)
    assert expert.success_rate == 1.0 and rand.success_rate == 0.0
    assert expert.mean_return > 2 * rand.mean_return
    assert expert.task_metrics["pointing_error_deg"] < 0.5 * rand.task_metrics["pointing_error_deg"]
    assert expert.task_metrics["jerk"] < rand.task_metrics["jerk"]
    assert 0 < expert.task_metrics["energy"] < rand.task_metrics["energy"]


def test_returns_lengths_and_recorded_episodes_agree() -> None:
    summary = evaluate("expert", "flywheel/Track-v0", {"track": "warehouse", "max_steps": 2000}, episodes=2, seed=4)
    assert len(summary.returns) == len(summary.lengths) == len(summary.episodes) == 2
    assert summary.mean_return == pytest.approx(np.mean(summary.returns))
    assert summary.std_return == pytest.approx(np.std(summary.returns))
    for ep, ret, length in zip(summary.episodes, summary.returns, summary.lengths, strict=True):
        cols = ep.columns
        assert cols["observation.state"].shape == (length, 13) and cols["observation.state"].dtype == np.float32
        assert cols["action"].shape == (length, 2)
        assert cols["next.reward"].shape == (length,)
        assert float(cols["next.reward"].sum()) == pytest.approx(ret, rel=1e-5)
        assert cols["next.done"].sum() == 1 and cols["next.done"][-1]
        assert ep.success is True  # warehouse lapped within 100 s
    assert summary.success_rate == 1.0
    assert summary.task_metrics["laps"] >= 1 and 10.0 < summary.task_metrics["lap_time"] < 100.0


def test_same_seed_same_numbers_and_gap() -> None:
    def policy(obs: np.ndarray) -> np.ndarray:
        return np.array([np.clip(2 * obs[4], -1, 1), 0.4], np.float32)  # steer at the 2 m look-ahead point

    a = evaluate(policy, "flywheel/Track-v0", TRACK, episodes=2, seed=7, record=False)
    b = evaluate(policy, "flywheel/Track-v0", TRACK, episodes=2, seed=7, record=False)
    assert a.returns == b.returns and a.episodes == []
    other = evaluate(policy, "flywheel/Track-v0", {**TRACK, "track": "generated-roads"}, episodes=2, seed=7)
    assert generalisation_gap(a, other) == pytest.approx(a.mean_return - other.mean_return)


def test_sb3_models_and_discrete_actions() -> None:
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", _discrete(), device="cpu", seed=0)  # untrained, over DiscretizeAction(5, 3)
    summary = evaluate(model, "flywheel/Track-v0", {"max_steps": 20}, episodes=1, seed=0, discretize=(5, 3))
    actions = summary.episodes[0].columns["action"]
    assert actions.shape == (20, 1) and actions.dtype == np.int64
    greedy = model.predict(summary.episodes[0].columns["observation.state"], deterministic=True)[0]
    np.testing.assert_array_equal(actions[:, 0], greedy)  # deterministic predict, one call per step


def _discrete() -> gym.Env:
    from flywheel.training.envs import make_env

    return make_env("flywheel/Track-v0", discretize=(5, 3))


class Incidents(gym.Wrapper):
    """Flags a safety violation whenever the car is more than 1 m off the centre line."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["safety_violation"] = abs(info["cte"]) > 1.0
        return obs, reward, terminated, truncated, info


def test_safety_incidents_are_counted_when_reported() -> None:
    steer_left = lambda obs: np.array([1.0, 0.5], np.float32)  # noqa: E731
    plain = evaluate(steer_left, "flywheel/Track-v0", TRACK, episodes=1, seed=0)
    flagged = evaluate(steer_left, "flywheel/Track-v0", TRACK, episodes=1, seed=0, wrappers=[Incidents])
    assert "safety_incidents" not in plain.task_metrics
    cte = np.abs(flagged.episodes[0].columns["observation.state"][1:, 2]) * 2.0  # obs[2] = cte / half width
    assert flagged.task_metrics["safety_incidents"] == pytest.approx((cte > 1.0).sum(), abs=1)
    assert flagged.task_metrics["safety_incidents"] >= 1


def test_recorded_episodes_store_as_an_eval_dataset(tmp_path: Path) -> None:
    summary = evaluate("expert", "flywheel/ReachyNod-v0", episodes=2, seed=0)
    with create_dataset(tmp_path / "eval", features=summary.features, fps=50, robot_type="reachy_mini") as writer:
        for ep in summary.episodes:
            writer.append_episode(ep)
    reader = DatasetReader(tmp_path / "eval")
    assert reader.num_episodes == 2
    np.testing.assert_allclose(reader.read_columns(1)["action"], summary.episodes[1].columns["action"])


def test_bad_episode_count_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        evaluate("expert", "flywheel/Track-v0", episodes=0)
    assert caught.value.field == "episodes"


def test_summary_is_json_ready() -> None:
    summary = EvalSummary(1.0, 0.0, [1.0], [3], 1.0, {"laps": 1.0})
    assert summary.to_dict()["task/laps"] == 1.0
