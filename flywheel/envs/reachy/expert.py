"""Scripted experts for the Reachy Mini tasks: the 100 % reference and the source of demonstrations.

One controller serves every task, because every task publishes ``reference_pose(step)``: the head pose a
perfect controller would have at a control step (LookAt: the closed-form look-at angles of the object; Track:
the same for the object's position at that step; Nod/Shake: the ideal gesture). The expert commands

    pose = reference(t + lead) + kp · (reference(t) - measured(t)) + ki · Σ (reference - measured)

i.e. feed-forward with a small lead (the head lags its position targets by a few control steps) plus a PI
correction on the measured head angles (the motors' friction leaves a small steady-state error). Where the
corrected pose would leave the reachable workspace, the expert commands the feed-forward pose alone. In
``head_pose`` mode the pose is the action; in ``motors`` mode it goes through the same analytical IK the env
uses and the body yaw stays at 0, so both modes produce the same motion.

The expert reads the simulator's state (privileged information); policies only get the observation.

Example:
    >>> from flywheel.envs.reachy.tasks import ReachyLookAtEnv
    >>> env = ReachyLookAtEnv()
    >>> expert = ReachyExpert(env)
    >>> obs, info = env.reset(seed=0)
    >>> expert.reset()
    >>> for _ in range(env.episode_steps):
    ...     obs, reward, terminated, truncated, info = env.step(expert(obs))
    >>> info["is_success"]
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from flywheel.envs.reachy.base import ReachyEnv
from flywheel.envs.reachy.kinematics import HEAD_POSE_LIMITS

_LIMITS = np.array([HEAD_POSE_LIMITS[k] for k in ("roll", "pitch", "yaw", "z")])


@dataclass(frozen=True)
class ExpertGains:
    """Gains of :class:`ReachyExpert`.

    Attributes:
        lead: control steps of look-ahead on the reference (compensates the head's lag).
        kp: proportional gain on the measured roll/pitch/yaw error.
        ki: integral gain per control step on that error.
    """

    lead: int = 4
    kp: float = 1.0
    ki: float = 0.05


class ReachyExpert:
    """A scripted controller for any Reachy task, in either action mode.

    Args:
        env: the environment (wrappers are looked through with ``.unwrapped``).
        gains: controller gains; the defaults work for every task.

    Call :meth:`reset` after each ``env.reset`` and ``expert(obs)`` for each action (the observation is
    accepted for the usual policy signature; the expert reads the simulator instead).
    """

    def __init__(self, env: gym.Env, gains: ExpertGains | None = None) -> None:
        inner = env.unwrapped
        if not isinstance(inner, ReachyEnv):
            raise TypeError(f"ReachyExpert needs a Reachy task, got {type(inner).__name__}")
        self.env: ReachyEnv = inner
        self.gains = gains or ExpertGains()
        self._integral = np.zeros(3)

    def reset(self) -> None:
        """Forget the integral term (call at the start of each episode)."""
        self._integral[:] = 0.0

    def pose(self) -> np.ndarray:
        """The head pose ``(roll, pitch, yaw, z)`` to command now."""
        env, g = self.env, self.gains
        step = env.step_count
        error = env.reference_pose(step)[:3] - env.head_pose[:3]
        self._integral += g.ki * error
        feedforward = np.clip(env.reference_pose(step + g.lead), -_LIMITS, _LIMITS)
        pose = feedforward.copy()
        pose[:3] += g.kp * error + self._integral
        pose = np.clip(pose, -_LIMITS, _LIMITS)
        if not env.kinematics.feasible(env.kinematics.raw_motor_angles(*pose)):
            self._integral -= g.ki * error  # at the edge of the workspace: no wind-up, no correction
            return feedforward
        return pose

    def __call__(self, observation: np.ndarray | None = None) -> np.ndarray:
        """The next action (``float32``, in the env's action space)."""
        pose = self.pose()
        if self.env.action_mode == "head_pose":
            return (pose / _LIMITS).astype(np.float32)
        angles, _ = self.env.kinematics.project(*pose)
        ctrl = np.concatenate([[0.0], angles])
        model = self.env.model
        action = 2.0 * (ctrl - model.ctrl_low) / (model.ctrl_high - model.ctrl_low) - 1.0
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def rollout(env: gym.Env, policy: ReachyExpert | None = None, *, seed: int = 0) -> dict[str, float]:
    """Run one episode with ``policy`` (default: the expert) and summarise it.

    Args:
        env: a Reachy task.
        policy: anything with ``reset()`` and ``__call__(obs) -> action``; default :class:`ReachyExpert`.
        seed: the episode's seed.

    Returns:
        ``{"return", "success", "mean_error_deg", "mean_jerk", "energy", "steps"}`` (energy in J for the
        episode, jerk in rad/s³ averaged over steps).

    Example:
        >>> from flywheel.envs.reachy.gestures import ReachyShakeEnv
        >>> summary = rollout(ReachyShakeEnv(), seed=0)
        >>> summary["success"], summary["steps"]
        (1.0, 175)
    """
    policy = policy or ReachyExpert(env)
    obs, info = env.reset(seed=seed)
    policy.reset()
    total, errors, jerk, steps, done = 0.0, 0.0, 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += float(reward)
        errors += info["pointing_error_deg"]
        jerk += info["jerk"]
        steps += 1
        done = terminated or truncated
    return {
        "return": total,
        "success": float(info["is_success"]),
        "mean_error_deg": errors / steps,
        "mean_jerk": jerk / steps,
        "energy": info["episode_energy"],
        "steps": steps,
    }
