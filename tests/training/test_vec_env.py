"""StepVecEnv: DummyVecEnv's results without its deep copy of infos, and infos that never change once returned."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from flywheel.training.envs import make_env, make_vec_env
from flywheel.training.vec_env import StepVecEnv


def _track(i: int) -> Any:
    return lambda: Monitor(make_env("flywheel/Track-v0", {"max_steps": 30}, seed=i))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):  # Monitor's episode["t"] is wall-clock time: it differs between any two runs
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a if not (k == "t" and "l" in a))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return bool(a == b)


def test_steps_match_dummy_vec_env_across_resets() -> None:
    ours, theirs = StepVecEnv([_track(i) for i in range(3)]), DummyVecEnv([_track(i) for i in range(3)])
    for venv in (ours, theirs):
        venv.seed(7)
    assert np.array_equal(ours.reset(), theirs.reset())
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(100):  # episodes of 30 steps: every copy resets three times
        actions = rng.uniform(-1, 1, (3, *ours.action_space.shape)).astype(np.float32)
        a, b = ours.step(actions), theirs.step(actions)
        for x, y in zip(a[:3], b[:3], strict=True):
            assert np.array_equal(x, y)
        assert all(_same(x, y) for x, y in zip(a[3], b[3], strict=True))
        ends += int(a[2].sum())
    assert ends == 9


class _SameDict(gym.Env):
    """An env that hands back one dict object every step (allowed by gymnasium, and a trap for shallow copies)."""

    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Discrete(2)

    def __init__(self) -> None:
        self.info: dict[str, Any] = {"t": 0}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self.info["t"] = 0
        return np.zeros(1, np.float32), self.info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.info["t"] += 1
        return np.zeros(1, np.float32), 0.0, self.info["t"] == 2, False, self.info


def test_a_returned_info_never_changes_and_the_envs_own_dict_is_left_alone() -> None:
    venv = StepVecEnv([_SameDict])
    venv.reset()
    first = venv.step(np.array([0]))[3][0]
    second = venv.step(np.array([0]))[3][0]  # ends the episode: terminal_observation added, env reset
    venv.step(np.array([0]))
    assert first == {"t": 1, "TimeLimit.truncated": False}
    assert second["t"] == 2 and "terminal_observation" in second
    assert venv.envs[0].info == {"t": 1}  # neither flag was written into the env's dict


def test_a_seeded_ppo_run_learns_the_same_parameters_as_on_dummy_vec_env() -> None:
    torch.set_num_threads(1)
    params = []
    for kind in (StepVecEnv, DummyVecEnv):
        venv = kind([_track(i) for i in range(2)])
        venv.seed(3)
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=3, device="cpu")
        model.learn(256)
        params.append(torch.cat([p.detach().flatten() for p in model.policy.parameters()]))
    assert torch.equal(params[0], params[1])


def test_make_vec_env_builds_one() -> None:
    venv = make_vec_env("flywheel/Track-v0", n_envs=2, seed=0)
    assert isinstance(venv, StepVecEnv)
    venv.close()
