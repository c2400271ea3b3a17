"""Counting a monitor-only safety layer in batches gives exactly the per-step SafetyWrapper's figures."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from flywheel.envs.wrappers import DiscretizeAction
from flywheel.errors import InvalidInput
from flywheel.safety import counting
from flywheel.safety.config import SafetyConfig
from flywheel.safety.counting import VecSafetyCounter, count_violations, vec_safety_stats
from flywheel.safety.limits import SafetyLayer, SafetyStats
from flywheel.safety.wrapper import find_safety_wrapper
from flywheel.training.envs import make_env, make_vec_env

MONITOR = {"mode": "monitor", "penalty_weight": 0.0}


def both_ways(n_envs: int, config: dict, **make_kwargs: object) -> tuple[VecSafetyCounter, DummyVecEnv]:
    """A vec env counted both ways at once: a SafetyWrapper in every copy, a VecSafetyCounter around them."""
    config = {**config, **MONITOR}
    copies = DummyVecEnv([lambda: Monitor(make_env("flywheel/Track-v0", {"max_steps": 40}, safety=config,
                                                   **make_kwargs))] * n_envs)
    first = copies.envs[0]
    table = first.env.table if isinstance(first.env, DiscretizeAction) else None  # right under the Monitor
    layer = SafetyLayer.from_env(find_safety_wrapper(first).env, config)
    return VecSafetyCounter(copies, layer, table=table), copies


def per_copy_stats(copies: DummyVecEnv) -> dict:
    return vec_safety_stats(copies).to_dict()


def summed(counters: list[SafetyStats]) -> SafetyStats:
    total = SafetyStats()
    for stats in counters:
        total.actions += stats.actions
        total.violating_actions += stats.violating_actions
        total.violations.update(stats.violations)
    return total


def test_a_ppo_run_counts_exactly_what_the_wrappers_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gaussian exploration on a 40-step track: episode ends inside rollouts, batches cut inside episodes."""
    monkeypatch.setattr(counting, "BATCH_STEPS", 50)
    counter, copies = both_ways(3, {"limits": {"throttle": [0.0, 0.8]}, "rate_limits": {"steer": 0.6}})
    model = PPO("MlpPolicy", counter, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=3 * 64 * 3)
    counted = counter.safety_stats.to_dict()
    assert counted == per_copy_stats(copies)
    assert counted["actions"] == 3 * 64 * 3
    assert 0 < counted["violating_actions"] < counted["actions"]
    assert set(counted["violations"]) == {"throttle.range", "steer.rate"}


def test_a_dqn_run_on_discrete_actions_counts_the_decoded_actions() -> None:
    counter, copies = both_ways(1, {"limits": {"throttle": [0.0, 0.5]}, "rate_limits": {"steer": 0.5}},
                                discretize=(5, 3))
    assert counter.action_space == gym.spaces.Discrete(15)
    model = DQN("MlpPolicy", counter, buffer_size=1000, learning_starts=50, seed=0, device="cpu")
    model.learn(total_timesteps=300)
    counted = counter.safety_stats.to_dict()
    assert counted == per_copy_stats(copies)
    assert set(counted["violations"]) == {"throttle.range", "steer.rate"}


@pytest.mark.parametrize(("env_kwargs", "config"), [
    ({}, {"limits": {"throttle": [0.1, 0.6]}, "rate_limits": {"steer": 0.4, "throttle": 0.3}}),
    ({"action_mode": "motors"}, {"rate_limits": {"yaw_body": 0.05, "stewart_2": 0.1}}),  # offsets, rest pose
])
def test_batches_match_layers_stepped_one_action_at_a_time(env_kwargs: dict, config: dict) -> None:
    """Random actions with NaN and inf, random episode starts, cut into batches at random places."""
    env_id = "flywheel/Track-v0" if not env_kwargs else "flywheel/ReachyLookAt-v0"
    env = gym.make(env_id, **env_kwargs)
    config = SafetyConfig(**config, **MONITOR)
    rng = np.random.default_rng(0)
    steps, n_envs, m = 600, 3, env.action_space.shape[0]
    actions = rng.normal(0.0, 0.7, size=(steps, n_envs, m)).astype(np.float32)
    actions[rng.random(actions.shape) < 0.01] = np.nan
    actions[rng.random(actions.shape) < 0.01] = np.inf
    starts = rng.random((steps, n_envs)) < 0.05
    starts[0] = True
    layers = [SafetyLayer.from_env(env, config) for _ in range(n_envs)]
    for t in range(steps):
        for i, layer in enumerate(layers):
            if starts[t, i]:
                layer.reset()
            layer.apply(actions[t, i])
    expected = summed([layer.stats for layer in layers])
    assert {key.split(".")[1] for key in expected.violations} == {"range", "rate", "finite"}

    counter = SafetyLayer.from_env(env, config)
    previous = np.tile(counter.rest, (n_envs, 1))
    batches = []
    cuts = [0, *sorted(rng.choice(np.arange(1, steps), size=7, replace=False).tolist()), steps]
    for a, b in itertools.pairwise(cuts):
        stats, previous = count_violations(counter, actions[a:b], starts[a:b], previous)
        batches.append(stats)
    assert summed(batches) == expected
    np.testing.assert_array_equal(previous, np.stack([layer.previous for layer in layers]))


def test_make_vec_env_counts_a_monitor_only_config_and_still_refuses_one_that_does_not_fit() -> None:
    venv = make_vec_env("flywheel/Track-v0", {"max_steps": 10}, n_envs=2, seed=0,
                        safety={"limits": {"throttle": [0, 0.5]}, **MONITOR})
    venv.reset()
    for _ in range(12):  # across an episode end
        venv.step(np.array([[0.0, 0.9], [0.0, 0.4]], np.float32))
    assert vec_safety_stats(venv).to_dict() == {"actions": 24, "violating_actions": 12, "violation_rate": 0.5,
                                                "violations": {"throttle.range": 12}}
    with pytest.raises(InvalidInput) as caught:
        make_vec_env("flywheel/Track-v0", n_envs=2, safety={"limits": {"gear": [0, 1]}, **MONITOR})
    assert caught.value.field == "limits.gear"
    # CartPole has no Box actions: counting is a courtesy and skips it, as SafetyWrapper's monitor mode does
    assert vec_safety_stats(make_vec_env("CartPole-v1", safety=MONITOR)) is None
