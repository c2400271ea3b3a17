"""The vectorised env every template trains on: SB3's ``DummyVecEnv`` without its per-step deep copy of infos.

``DummyVecEnv.step_wait`` returns ``deepcopy(infos)`` so that a caller keeping the info dicts never sees
them change. On Flywheel's tasks that copy took ~20-36 µs of a ~57 µs step of 4 Track-v0 copies (the
dicts carry tuples, a nested ``episode`` dict and the terminal observation's array), paid on every step
of every run. :class:`StepVecEnv` gives each caller its own dict per env instead (a shallow copy,
~0.5 µs): a later step never changes a dict already returned, whichever env object built it; the values
themselves are the env's (a new terminal observation array, a new ``episode`` dict per episode, as
SB3's ``Monitor`` builds them). Everything else is ``DummyVecEnv``'s own code: the same observations,
rewards, dones and resets, so a seeded run learns the same parameters.

Example:
    >>> import gymnasium as gym
    >>> venv = StepVecEnv([lambda: gym.make("CartPole-v1")] * 2)
    >>> _ = venv.seed(0), venv.reset()
    >>> obs, rewards, dones, infos = venv.step(np.array([0, 1]))
    >>> obs.shape, len(infos)
    ((2, 4), 2)
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn


class StepVecEnv(DummyVecEnv):
    """``DummyVecEnv`` whose ``step_wait`` copies each info dict shallowly instead of deep-copying the list."""

    def step_wait(self) -> VecEnvStepReturn:
        for i, env in enumerate(self.envs):
            obs, self.buf_rews[i], terminated, truncated, info = env.step(self.actions[i])
            self.buf_dones[i] = terminated or truncated
            info = dict(info)  # ours to change: the env may hand back the same dict every step
            info["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            self.buf_infos[i] = info
            self._save_obs(i, obs)
        return self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones), list(self.buf_infos)
