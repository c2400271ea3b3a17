"""A scripted pure-pursuit driver for :class:`~flywheel.envs.track.env.TrackEnv`: the 100% reference.

It reads the car's true state from the unwrapped env (privileged, like a human driver who sees the road):

- steering: pure pursuit towards the centre-line point ``Ld = 2.5 m + 0.35 s · v`` ahead,
  ``δ = atan(2 L sin α / Ld)``, divided by ``max_steer`` into the [-1, 1] action;
- throttle: a target speed ``min(cruise, sqrt(0.6 μ g / κ))`` from the sharpest curvature ``κ`` in the
  next ``1.2 s · v + 6 m`` (so it slows for hairpins and 90° corners), tracked by a proportional controller.

It laps every track (checked by the tests). Works through any wrappers that keep ``env.unwrapped``.

Example:
    >>> from flywheel.envs.track.env import TrackEnv
    >>> env = TrackEnv(track="warehouse")
    >>> expert = PurePursuitExpert(env)
    >>> obs, info = env.reset(seed=0)
    >>> while info["lap_count"] < 1:
    ...     obs, reward, terminated, truncated, info = env.step(expert(obs))
    >>> info["lap_count"], terminated
    (1, False)
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from flywheel.envs.track.car import G


class PurePursuitExpert:
    """Pure-pursuit steering with curvature-aware speed control.

    Args:
        env: a ``TrackEnv``, possibly wrapped.
        cruise_speed: the speed on straights, m/s (capped by the car's top speed).
        lateral_accel: fraction of the friction limit ``μ g`` it allows in bends.
    """

    def __init__(self, env: gym.Env, *, cruise_speed: float = 8.0, lateral_accel: float = 0.6) -> None:
        self.env = env.unwrapped
        self.cruise_speed = cruise_speed
        self.lateral_accel = lateral_accel

    def act(self) -> np.ndarray:
        """The expert's ``(steer, throttle)`` for the env's current state."""
        env = self.env
        car, track, params = env.car, env.track, env.car.params
        v = car.speed
        ld = 2.5 + 0.35 * v
        tx, ty = track.point_at(env._s + ld)
        alpha = math.atan2(ty - car.y, tx - car.x) - car.yaw
        delta = math.atan2(2.0 * params.wheelbase * math.sin(alpha), ld)
        steer = max(-1.0, min(1.0, delta / params.max_steer))
        kappa = track.curvature_ahead(env._s, 1.2 * v + 6.0)
        limit = math.sqrt(self.lateral_accel * params.friction * G / kappa) if kappa > 1e-6 else math.inf
        target = min(self.cruise_speed, params.max_speed, limit)
        throttle = max(0.0, min(1.0, target / params.max_speed + 0.5 * (target - v)))
        return np.array([steer, throttle], dtype=np.float32)

    def __call__(self, obs: Any = None) -> np.ndarray:
        """Policy-style call: ``action = expert(obs)`` (the observation is not needed)."""
        return self.act()

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Stable-Baselines3-style ``predict`` for a single (non-vectorised) env."""
        return self.act(), None
