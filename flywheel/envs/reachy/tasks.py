"""Pointing tasks: look at an object on the table (``ReachyLookAt-v0``) and follow a moving one (``ReachyTrack-v0``).

Spaces, reward and the common info keys are documented in :mod:`flywheel.envs.reachy.base`. The object is the
red sphere you see in the renders; the robot stands on the table top (the ground plane, z = 0).

Example:
    >>> env = ReachyLookAtEnv()
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space.shape, info["is_success"]
    ((27,), (4,), False)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from flywheel.envs.reachy.base import CONTROL_DT, POINTING_TOLERANCE_DEG, ReachyEnv
from flywheel.envs.reachy.kinematics import look_at_angles
from flywheel.errors import InvalidInput

#: Steps the pointing error must stay under tolerance for LookAt to succeed (0.5 s).
HOLD_STEPS = 25


def check_range(
    field: str, value: tuple[float, float], lowest: float, highest: float, unit: str = ""
) -> tuple[float, float]:
    """Validate a ``(low, high)`` setting inside ``[lowest, highest]``; raise ``InvalidInput`` naming it.

    Example:
        >>> check_range("azimuth_range_deg", (-10, 10), -45, 45)
        (-10.0, 10.0)
        >>> check_range("height_range", (0.5, 0.1), 0, 1)
        Traceback (most recent call last):
        ...
        flywheel.errors.InvalidInput: height_range: (0.5, 0.1) is out of range (allowed: low <= high within [0, 1])
    """
    allowed = f"low <= high within [{lowest:g}, {highest:g}]{unit}"
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{value!r} is not a (low, high) pair", field=field, allowed=allowed) from None
    if not (lowest <= low <= high <= highest):
        raise InvalidInput(f"{value!r} is out of range", field=field, allowed=allowed)
    return low, high


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    ce = math.cos(elevation)
    return np.array([ce * math.cos(azimuth), ce * math.sin(azimuth), math.sin(elevation)])


class ReachyLookAtEnv(ReachyEnv):
    """Turn the head so the eye camera points at an object on the table.

    Each episode places the object (a 2 cm sphere) at a random distance, azimuth and height in front of the
    robot; the head starts level, looking straight ahead. 100 control steps (2 s).

    Success (``info["is_success"]``, latched): pointing error < 5° for 25 consecutive control steps (0.5 s).

    Task observation (1): the current run of on-target steps / 25, capped at 1.
    Task info: ``hold_steps``, ``target_position`` (m, world).

    Args:
        distance_range: horizontal distance of the object from the robot's axis (m), within [0.3, 0.8].
        azimuth_range_deg: its bearing, positive to the robot's left, within [-40, 40].

    The defaults keep every object where the head can point at it: low and near objects far to the side
    (pitch > ~30° with yaw > ~35°) press the head against the body in the simulator, so it cannot get there.
        height_range: height of its centre above the table (m), within [0.0, 0.3].
        **kwargs: :class:`~flywheel.envs.reachy.base.ReachyEnv` arguments (action_mode, render_mode, ...).

    Example:
        >>> env = ReachyLookAtEnv(action_mode="motors")
        >>> _ = env.reset(seed=1)
        >>> env.action_space.shape, round(float(env.target_position[2]), 3) <= 0.12
        ((7,), True)
    """

    default_episode_steps: ClassVar[int] = 100
    task_obs_size: ClassVar[int] = 1

    def __init__(
        self,
        *,
        distance_range: tuple[float, float] = (0.38, 0.6),
        azimuth_range_deg: tuple[float, float] = (-35.0, 35.0),
        height_range: tuple[float, float] = (0.02, 0.12),
        **kwargs: Any,
    ) -> None:
        self.distance_range = check_range("distance_range", distance_range, 0.3, 0.8, " m")
        self.azimuth_range_deg = check_range("azimuth_range_deg", azimuth_range_deg, -40.0, 40.0, " deg")
        self.height_range = check_range("height_range", height_range, 0.0, 0.3, " m")
        super().__init__(**kwargs)
        self.target_position = np.array([0.4, 0.0, 0.03])
        self._head_home = self.model.home_head_position
        self._hold = 0

    def _reset_task(self, rng: np.random.Generator, options: dict[str, Any] | None) -> None:
        distance = rng.uniform(*self.distance_range)
        azimuth = math.radians(rng.uniform(*self.azimuth_range_deg))
        height = rng.uniform(*self.height_range)
        self.target_position = np.array([distance * math.cos(azimuth), distance * math.sin(azimuth), height])
        self._target_point = self.target_position
        self._set_marker(self.target_position)
        self._hold = 0

    def _update_target(self, step: int) -> None:
        return None  # the object does not move

    def _update_success(self) -> None:
        on_target = math.degrees(self.pointing_error) < POINTING_TOLERANCE_DEG
        self._hold = self._hold + 1 if (on_target and self._step > 0) else 0
        if self._hold >= HOLD_STEPS:
            self.is_success = True

    def _write_task_obs(self, out: np.ndarray) -> None:
        out[0] = min(self._hold / HOLD_STEPS, 1.0)

    def _task_info(self) -> dict[str, Any]:
        return {"hold_steps": self._hold, "target_position": self.target_position.copy()}

    def reference_pose(self, step: int) -> np.ndarray:
        """Roll 0, z 0, and the pitch/yaw that put the object on the camera axis."""
        pitch, yaw = look_at_angles(self.target_position, self._head_home)
        return np.array([0.0, pitch, yaw, 0.0])


class ReachyTrackEnv(ReachyEnv):
    """Follow a moving object smoothly with the eye camera.

    The object moves on a sphere of radius 0.5 m around the head: its azimuth (centre ±10°) and elevation
    (centre -15°..0°, half the azimuth's amplitude) are sinusoids with random amplitude, frequency and phase
    (at most ~55°/s with the defaults). 250 control steps (5 s).

    Success (``info["is_success"]``, final at the last step): the mean pointing error over the second half of
    the episode is below 5° (before the second half starts it is False).

    Task observation (3): the object's angular velocity as seen from the head, in the head frame (rad/s).
    Task info: ``mean_error_second_half_deg`` (running; ``inf`` before the second half), ``target_position``.
    Smoothness is reported as ``jerk`` and ``action_rate`` in every step's info.

    Args:
        frequency_range_hz: range of the two sinusoids' frequencies, within [0.05, 1.0] Hz.
        amplitude_range_deg: range of the azimuth amplitude (the elevation uses half of it), within [0, 25].
        **kwargs: :class:`~flywheel.envs.reachy.base.ReachyEnv` arguments.

    Example:
        >>> env = ReachyTrackEnv()
        >>> _ = env.reset(seed=0)
        >>> env.episode_steps, env.observation_space.shape
        (250, (29,))
    """

    default_episode_steps: ClassVar[int] = 250
    task_obs_size: ClassVar[int] = 3
    distance: ClassVar[float] = 0.5

    def __init__(
        self,
        *,
        frequency_range_hz: tuple[float, float] = (0.15, 0.35),
        amplitude_range_deg: tuple[float, float] = (10.0, 25.0),
        **kwargs: Any,
    ) -> None:
        self.frequency_range_hz = check_range("frequency_range_hz", frequency_range_hz, 0.05, 1.0, " Hz")
        self.amplitude_range_deg = check_range("amplitude_range_deg", amplitude_range_deg, 0.0, 25.0, " deg")
        super().__init__(**kwargs)
        self._params = np.zeros(8)
        self._head_home = self.model.home_head_position
        self._errors_sum = 0.0
        self._errors_n = 0
        self.target_position = np.zeros(3)
        self._velocity = np.zeros(3)

    def _reset_task(self, rng: np.random.Generator, options: dict[str, Any] | None) -> None:
        amp = math.radians(rng.uniform(*self.amplitude_range_deg))
        self._params[:] = (
            math.radians(rng.uniform(-10.0, 10.0)),  # azimuth centre
            amp,
            2 * math.pi * rng.uniform(*self.frequency_range_hz),
            rng.uniform(0, 2 * math.pi),
            math.radians(rng.uniform(-15.0, 0.0)),  # elevation centre
            0.5 * amp,
            2 * math.pi * rng.uniform(*self.frequency_range_hz),
            rng.uniform(0, 2 * math.pi),
        )
        self._errors_sum, self._errors_n = 0.0, 0

    def angles_at(self, step: int) -> tuple[float, float]:
        """The object's ``(azimuth, elevation)`` (rad) seen from the head at control step ``step``."""
        az0, a_az, w_az, p_az, el0, a_el, w_el, p_el = self._params
        t = step * CONTROL_DT
        return az0 + a_az * math.sin(w_az * t + p_az), el0 + a_el * math.sin(w_el * t + p_el)

    def position_at(self, step: int) -> np.ndarray:
        """The object's world position at control step ``step``."""
        return self._head_home + self.distance * _direction(*self.angles_at(step))

    def _update_target(self, step: int) -> None:
        previous = self.position_at(step - 1)
        self.target_position = self.position_at(step)
        self._velocity = (self.target_position - previous) / (self.distance * CONTROL_DT)
        self._target_point = self.target_position
        self._set_marker(self.target_position)

    def _update_success(self) -> None:
        if self._step >= self.episode_steps // 2:
            self._errors_sum += math.degrees(self.pointing_error)
            self._errors_n += 1
            self.is_success = self._errors_sum / self._errors_n < POINTING_TOLERANCE_DEG

    def _write_task_obs(self, out: np.ndarray) -> None:
        out[:] = self.head_rotation.T @ self._velocity

    def _task_info(self) -> dict[str, Any]:
        mean = self._errors_sum / self._errors_n if self._errors_n else math.inf
        return {"mean_error_second_half_deg": mean, "target_position": self.target_position.copy()}

    def reference_pose(self, step: int) -> np.ndarray:
        """Roll 0, z 0, and the pitch/yaw that put the object's position at ``step`` on the camera axis."""
        pitch, yaw = look_at_angles(self.position_at(step), self._head_home)
        return np.array([0.0, pitch, yaw, 0.0])
