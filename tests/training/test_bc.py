"""Behavioural cloning: it learns (far above random on both robots), it is PPO's network, and bad data is refused."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from flywheel.errors import InvalidInput
from flywheel.training.base import RunContext, RunInputs
from flywheel.training.demos import record_demos
from flywheel.training.evaluation import evaluate
from flywheel.training.templates import TEMPLATES, parse_config
from flywheel.training.templates.bc import mc_returns

TRACK = {"track": "generated-roads", "max_steps": 300, "random_start": True}


def _random_return(env_id: str, kwargs: dict, shape: int, low: float) -> float:
    box = gym.spaces.Box(low, 1.0, (shape,), np.float32, seed=0)
    if shape == 2:
        box = gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32), seed=0)
    return evaluate(lambda obs: box.sample(), env_id, kwargs, episodes=3, seed=1_000_000, record=False).mean_return


def test_bc_on_expert_demos_drives_far_better_than_random_on_track(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    demos = record_demos(tmp_path / "demos", "flywheel/Track-v0", TRACK, episodes=3, seed=0)
    config = parse_config("bc", {"env_kwargs": TRACK, "bc_epochs": 40, "value_epochs": 20, "eval_episodes": 3})
    result = TEMPLATES["bc"].run(config, RunContext(tmp_path / "run", RunInputs([demos.root])))

    random_return = _random_return("flywheel/Track-v0", TRACK, 2, -1.0)
    assert result.evaluation.mean_return > 0.8 * demos.mean_return  # metres of progress, like the expert
    assert result.evaluation.mean_return > 4 * max(random_return, 1.0)
    assert (result.env_steps, result.env_episodes, result.algorithm) == (900, 3, "PPO")
    # model.zip is PPO's, and it acts like the evaluated clone
    model = PPO.load(result.checkpoint, device="cpu")
    again = evaluate(model, "flywheel/Track-v0", TRACK, episodes=3, seed=1_000_000, record=False)
    assert again.mean_return == pytest.approx(result.evaluation.mean_return, rel=1e-3)


def test_bc_clones_the_reachy_expert_and_fits_the_value_head(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from flywheel.datasets.reader import DatasetReader

    demos = record_demos(tmp_path / "demos", "flywheel/ReachyLookAt-v0", episodes=6, seed=0)
    config = parse_config("bc", {"env_id": "flywheel/ReachyLookAt-v0", "eval_episodes": 3, "value_epochs": 30})
    result = TEMPLATES["bc"].run(config, RunContext(tmp_path / "run", RunInputs([demos.root])))

    random_return = _random_return("flywheel/ReachyLookAt-v0", {}, 4, -1.0)
    assert result.evaluation.mean_return > 0.8 * demos.mean_return
    assert result.evaluation.mean_return > 2.5 * random_return
    assert result.evaluation.success_rate >= 2 / 3
    # the critic predicts the demonstrations' discounted returns (O(120); an untrained head answers O(0.1))
    import torch

    model = PPO.load(result.checkpoint, device="cpu")
    ep = DatasetReader(demos.root).read_episode(0)
    targets = mc_returns(ep.columns["next.reward"], gamma=0.99, terminated=False)
    with torch.no_grad():
        values = model.policy.predict_values(torch.tensor(ep.columns["observation.state"])).numpy().ravel()
    assert np.sqrt(np.mean((values - targets) ** 2)) < 0.02 * np.mean(targets)


def test_bc_on_discrete_actions_uses_cross_entropy_and_learns(tmp_path: Path) -> None:
    kwargs = {**TRACK, "max_steps": 200}
    demos = record_demos(tmp_path / "demos", "flywheel/Track-v0", kwargs, episodes=6, discretize=(5, 3))
    config = parse_config("bc", {"env_kwargs": kwargs, "discretize": [5, 3], "bc_epochs": 300,
                                 "value_pretrain": False, "eval_episodes": 2})
    result = TEMPLATES["bc"].run(config, RunContext(tmp_path / "run", RunInputs([demos.root])))
    assert result.evaluation.mean_return > 0.8 * demos.mean_return > 0
    assert result.evaluation.mean_return > 3 * max(_random_return("flywheel/Track-v0", kwargs, 2, -1.0), 1.0)


def test_features_that_do_not_match_the_env_are_refused_before_any_work(tmp_path: Path) -> None:
    demos = record_demos(tmp_path / "reachy", "flywheel/ReachyLookAt-v0", {"episode_steps": 10}, episodes=1)
    run = tmp_path / "run"
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["bc"].run(parse_config("bc", {"env_kwargs": TRACK}), RunContext(run, RunInputs([demos.root])))
    assert caught.value.field == "dataset.features.observation.state"
    assert "[27]" in str(caught.value) and "[13]" in str(caught.value)  # both shapes named
    assert not run.exists()  # nothing written, nothing trained
    # same observation size, other action size: Reachy in motor mode (7) vs head-pose mode (4)
    motors = record_demos(tmp_path / "motors", "flywheel/ReachyLookAt-v0",
                          {"episode_steps": 10, "action_mode": "motors"}, episodes=1)
    config = parse_config("bc", {"env_id": "flywheel/ReachyLookAt-v0"})
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["bc"].run(config, RunContext(run, RunInputs([motors.root])))
    assert caught.value.field.startswith("dataset.features.")
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["bc"].run(config, RunContext(run, RunInputs([])))
    assert caught.value.field == "inputs.dataset_roots"
    assert not run.exists()


def test_mc_returns_bootstrap_only_truncated_episodes() -> None:
    rewards = np.array([1.0, 0.0, 2.0])
    assert mc_returns(rewards, gamma=0.5, terminated=True).tolist() == [1.5, 1.0, 2.0]
    tail = np.mean(rewards) / (1 - 0.5)
    assert mc_returns(rewards, gamma=0.5, terminated=False)[-1] == pytest.approx(2.0 + 0.5 * tail)
