"""The safety wrapper: clipped exploration, r_safety penalties, info keys, and the violation rate in every run."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import flywheel.envs  # noqa: F401
from flywheel.errors import InvalidInput
from flywheel.safety.wrapper import SafetyWrapper, find_safety_wrapper, wrap_safety
from flywheel.training.base import RunContext
from flywheel.training.envs import expert_for, make_env
from flywheel.training.evaluation import evaluate
from flywheel.training.templates import get_template_impl, parse_config

TIGHT = {"limits": {"throttle": [0.0, 0.5]}, "rate_limits": {"steer": 0.2}, "penalty_weight": 2.0}


def test_the_env_receives_the_clipped_action_and_the_penalty_is_added() -> None:
    wrapped = SafetyWrapper(gym.make("flywheel/Track-v0"), TIGHT)
    plain = gym.make("flywheel/Track-v0")
    wrapped.reset(seed=3)
    plain.reset(seed=3)
    obs, reward, _, _, info = wrapped.step([0.5, 0.9])  # steer jumps 0.5 (> 0.2) and throttle 0.9 (> 0.5)
    ref_obs, ref_reward, _, _, _ = plain.step([0.2, 0.5])  # what the wrapper must have sent
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-6)
    assert info["safety_violation"] is True and info["r_safety"] == -4.0  # two limits × weight 2
    assert reward == pytest.approx(ref_reward - 4.0)
    assert info["safety_violations"] == ["steer changed by 0.5 in one step (limit 0.2)",
                                         "throttle = 0.9 is outside [0, 0.5]"]
    obs, reward, _, _, info = wrapped.step([0.3, 0.4])
    ref_obs, ref_reward, _, _, _ = plain.step([0.3, 0.4])
    assert info["safety_violation"] is False and info["r_safety"] == 0.0 and reward == pytest.approx(ref_reward)
    assert wrapped.violation_rate == 0.5


def test_the_episode_end_carries_the_episode_record() -> None:
    env = SafetyWrapper(gym.make("flywheel/Track-v0", max_steps=5), {"limits": {"throttle": [0, 0.5]}})
    env.reset(seed=0)
    infos = [env.step([0.0, t])[4] for t in (0.1, 0.8, 0.2, 0.9, 0.3)]
    episode = infos[-1]["safety_episode"]
    assert episode["actions"] == 5 and episode["violating_actions"] == 2
    assert [(v["step"], v["dimension"], v["kind"]) for v in episode["violations"]] == [
        (1, "throttle", "range"), (3, "throttle", "range")]
    assert "safety_episode" not in infos[0]


def test_evaluation_reports_the_wrappers_violations_as_safety_incidents() -> None:
    always_fast = lambda obs: np.array([0.0, 1.0])  # noqa: E731
    summary = evaluate(always_fast, "flywheel/Track-v0", {"max_steps": 30}, episodes=2, seed=0,
                       safety={"limits": {"throttle": [0, 0.5]}, "penalty_weight": 0.0})
    assert summary.task_metrics["safety_incidents"] == 60.0
    careful = evaluate(lambda obs: np.array([0.0, 0.4]), "flywheel/Track-v0", {"max_steps": 30}, episodes=2, seed=0,
                       safety={"limits": {"throttle": [0, 0.5]}})
    assert careful.task_metrics["safety_incidents"] == 0.0


def test_a_rate_limited_reachy_expert_still_succeeds_and_only_the_first_swing_is_clipped() -> None:
    """10°/step (500°/s) clips the expert's opening swing towards the target and nothing after it."""
    env = make_env("flywheel/ReachyLookAt-v0", safety={"rate_limits": {"pitch": 10.0, "yaw": 10.0}}, seed=0)
    expert = expert_for(env)
    steps, violating, records, successes = 0, 0, [], []
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            steps += 1
            done = terminated or truncated
        records += info["safety_episode"]["violations"]
        violating += info["safety_episode"]["violating_actions"]
        successes.append(info["is_success"])
    assert all(successes)
    assert records and max(r["step"] for r in records) < 5 and {r["kind"] for r in records} == {"rate"}
    assert find_safety_wrapper(env).violation_rate == violating / steps


def test_make_env_puts_the_layer_under_discrete_actions() -> None:
    env = make_env("flywheel/Track-v0", discretize=(5, 3), safety={"limits": {"throttle": [0, 0.5]}}, seed=0)
    assert env.action_space == gym.spaces.Discrete(15)
    wrapper = find_safety_wrapper(env)
    assert wrapper is not None and wrapper.layer.names == ["steer", "throttle"]
    _, _, _, _, info = env.step(14)  # steer +1, throttle 1.0
    assert info["safety_violation"] is True


def test_monitoring_skips_envs_without_box_actions_but_enforcing_refuses_them() -> None:
    cartpole = gym.make("CartPole-v1")
    assert wrap_safety(cartpole, {"mode": "monitor"}) is cartpole
    with pytest.raises(InvalidInput) as err:
        wrap_safety(cartpole, {})
    assert err.value.field == "env.action_space"


@pytest.mark.slow
def test_training_reports_the_violation_rate_with_and_without_the_layer(tmp_path: Path) -> None:
    """PPO with the layer enforced; DQN without it (counting only): both runs log safety/violation_rate."""
    base = {"total_timesteps": 256, "eval_episodes": 1, "env_kwargs": {"max_steps": 64}, "net_arch": [16]}
    runs = {
        "ppo": {**base, "n_steps": 64, "batch_size": 64, "n_envs": 2, "safety": True,
                "safety_config": {"limits": {"throttle": [0, 0.3]}}},
        "dqn": {**base, "learning_starts": 64},
    }
    last = {}
    for template, overrides in runs.items():
        ctx = RunContext(tmp_path / template)
        get_template_impl(template).run(parse_config(template, overrides), ctx)
        lines = [json.loads(line) for line in ctx.metrics_path().read_text().splitlines()]
        last[template] = lines[-1]
    ppo, dqn = last["ppo"], last["dqn"]
    assert ppo["safety/actions"] == 256 and 0 < ppo["safety/violation_rate"] <= 1  # exploration hits 0.3
    assert ppo["safety/violation_rate"] == ppo["safety/violating_actions"] / 256
    assert ppo["eval/safety/violation_rate"] == ppo["eval/safety_incidents"] / 64
    # DQN's discrete throttle stays within the robot's own range: counted, and zero
    assert dqn["safety/actions"] == 256 and dqn["safety/violation_rate"] == 0.0
    assert dqn["eval/safety/violation_rate"] == 0.0
