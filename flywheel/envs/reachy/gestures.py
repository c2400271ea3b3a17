"""Gestures on request: nod (``ReachyNod-v0``, pitch) and shake (``ReachyShake-v0``, yaw).

At a random moment (the *request*), the task asks for ``count`` oscillations of amplitude ``amplitude`` with a
fixed period. Its pointing target is the reference gaze direction of an ideal gesture,
``angle(t) = amplitude · sin(2π (t - t_request) / period)`` during the gesture and 0 (straight ahead) before
and after, so the shaped reward of :mod:`flywheel.envs.reachy.base` rewards performing it on time.

Success is judged on what the head did, not on the reward: an :class:`OscillationDetector` counts the head
angle's half-waves (excursions beyond ±50 % of the requested amplitude, with hysteresis) and the episode
succeeds when it saw exactly ``2 · count`` half-waves, each peaking within [60 %, 140 %] of the amplitude,
while the other two head angles stayed within ``max(50 % of the amplitude, 5°)`` of neutral.

Example:
    >>> env = ReachyNodEnv()
    >>> obs, info = env.reset(seed=0)
    >>> info["requested_cycles"] in (2, 3), env.observation_space.shape
    (True, (30,))
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from flywheel.envs.reachy.base import CONTROL_DT, ReachyEnv
from flywheel.envs.reachy.tasks import check_range
from flywheel.errors import InvalidInput

_PITCH, _YAW, _ROLL = 1, 2, 0


class OscillationDetector:
    """Counts half-waves of a signal around 0 and records each one's peak.

    A half-wave starts when the signal goes beyond ``+threshold`` (or below ``-threshold``) after having been
    on the other side (or at the start), and its peak is the largest ``|value|`` until the next one starts.

    Args:
        threshold: the excursion that counts (same unit as the signal, > 0).

    Example:
        >>> det = OscillationDetector(threshold=5.0)
        >>> for v in [0, 6, 10, 2, -7, -12, 0, 8, 1, -9, 0]:
        ...     det.update(v)
        >>> det.peaks, det.cycles
        ([10.0, 12.0, 8.0, 9.0], 2)
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.peaks: list[float] = []
        self._sign = 0

    def update(self, value: float) -> None:
        """Feed one sample."""
        if value > self.threshold and self._sign != 1:
            self._sign = 1
            self.peaks.append(float(value))
        elif value < -self.threshold and self._sign != -1:
            self._sign = -1
            self.peaks.append(float(-value))
        elif self._sign != 0 and value * self._sign > self.peaks[-1]:
            self.peaks[-1] = float(abs(value))

    @property
    def cycles(self) -> int:
        """Completed full oscillations (two half-waves each)."""
        return len(self.peaks) // 2


class GestureEnv(ReachyEnv):
    """Base of the gesture tasks; subclasses set ``axis`` and the amplitude limits.

    175 control steps (3.5 s). Task observation (4): ``[active, amplitude / 45°, count / 4, progress]`` where
    ``active`` is 1 while the gesture should be under way and ``progress`` goes 0 -> 1 over it.
    Task info: ``gesture_half_waves``, ``gesture_cycles``, ``requested_cycles``, ``requested_amplitude_deg``,
    ``off_axis_deg`` (largest deviation of the other two angles so far), ``request_step``.
    ``is_success`` is the criterion applied to the motion so far; its value at the last step is the verdict.

    Args:
        amplitude_range_deg: range of the requested amplitude.
        counts: the cycle counts that may be requested (each 1..4).
        period_s: the period of one cycle, within [0.5, 2.0] s.
        request_range_s: when the request comes, within [0, 2] s from the start.
        **kwargs: :class:`~flywheel.envs.reachy.base.ReachyEnv` arguments.
    """

    default_episode_steps: ClassVar[int] = 175
    task_obs_size: ClassVar[int] = 4
    axis: ClassVar[int] = _PITCH
    amplitude_limits_deg: ClassVar[tuple[float, float]] = (5.0, 30.0)
    default_amplitude_deg: ClassVar[tuple[float, float]] = (10.0, 20.0)

    def __init__(
        self,
        *,
        amplitude_range_deg: tuple[float, float] | None = None,
        counts: tuple[int, ...] = (2, 3),
        period_s: float = 0.8,
        request_range_s: tuple[float, float] = (0.2, 0.6),
        **kwargs: Any,
    ) -> None:
        self.amplitude_range_deg = check_range(
            "amplitude_range_deg", amplitude_range_deg or self.default_amplitude_deg, *self.amplitude_limits_deg, " deg"
        )
        if not counts or not all(isinstance(c, int) and 1 <= c <= 4 for c in counts):
            raise InvalidInput(f"{counts!r} is not a set of cycle counts", field="counts", allowed="integers 1..4")
        if not isinstance(period_s, int | float) or not 0.5 <= period_s <= 2.0:
            raise InvalidInput(f"{period_s!r} is out of range", field="period_s", allowed="0.5..2.0 s")
        self.counts = tuple(counts)
        self.period_s = float(period_s)
        self.request_range_s = check_range("request_range_s", request_range_s, 0.0, 2.0, " s")
        super().__init__(**kwargs)
        needed = self.request_range_s[1] + max(self.counts) * self.period_s + 0.3
        if needed > self.episode_steps * CONTROL_DT:
            raise InvalidInput(
                f"{self.episode_steps} steps cannot hold the longest gesture ({needed:.2f} s)",
                field="episode_steps",
                allowed=f">= {math.ceil(needed / CONTROL_DT)}",
            )
        self.amplitude = math.radians(self.amplitude_range_deg[0])
        self.count = self.counts[0]
        self.request_step = 0
        self._detector = OscillationDetector(0.5 * self.amplitude)
        self._off_axis = 0.0
        self._others = [i for i in (_ROLL, _PITCH, _YAW) if i != self.axis]

    # ------------------------------------------------------------- reference motion
    @property
    def gesture_steps(self) -> int:
        """Control steps the requested gesture lasts."""
        return round(self.count * self.period_s / CONTROL_DT)

    def reference_angle(self, step: int) -> float:
        """The ideal head angle on the gesture axis at control step ``step`` (rad)."""
        k = step - self.request_step
        if k <= 0 or k >= self.gesture_steps:
            return 0.0
        return self.amplitude * math.sin(2.0 * math.pi * k * CONTROL_DT / self.period_s)

    def reference_pose(self, step: int) -> np.ndarray:
        """The ideal ``(roll, pitch, yaw, z)`` at control step ``step``."""
        pose = np.zeros(4)
        pose[self.axis] = self.reference_angle(step)
        return pose

    # ------------------------------------------------------------- task hooks
    def _reset_task(self, rng: np.random.Generator, options: dict[str, Any] | None) -> None:
        self.amplitude = math.radians(rng.uniform(*self.amplitude_range_deg))
        self.count = int(rng.choice(self.counts))
        self.request_step = round(rng.uniform(*self.request_range_s) / CONTROL_DT)
        self._detector = OscillationDetector(0.5 * self.amplitude)
        self._off_axis = 0.0

    def _update_target(self, step: int) -> None:
        angle = self.reference_angle(step)
        c, s = math.cos(angle), math.sin(angle)
        direction = np.array([c, 0.0, -s]) if self.axis == _PITCH else np.array([c, s, 0.0])
        self._target_direction = direction
        self._set_marker(self.model.home_head_position + 0.4 * direction)

    def _update_success(self) -> None:
        det = self._detector
        det.update(float(self.head_pose[self.axis]))
        self._off_axis = max(self._off_axis, *(abs(float(self.head_pose[i])) for i in self._others))
        a = self.amplitude
        self.is_success = bool(
            len(det.peaks) == 2 * self.count
            and all(0.6 * a <= p <= 1.4 * a for p in det.peaks)
            and self._off_axis <= max(0.5 * a, math.radians(5.0))
        )

    def _write_task_obs(self, out: np.ndarray) -> None:
        k = self._step - self.request_step
        active = 0 < k < self.gesture_steps
        out[0] = 1.0 if active else 0.0
        out[1] = self.amplitude / math.radians(45.0)
        out[2] = self.count / 4.0
        out[3] = min(max(k / self.gesture_steps, 0.0), 1.0)

    def _task_info(self) -> dict[str, Any]:
        return {
            "gesture_half_waves": len(self._detector.peaks),
            "gesture_cycles": self._detector.cycles,
            "requested_cycles": self.count,
            "requested_amplitude_deg": math.degrees(self.amplitude),
            "off_axis_deg": math.degrees(self._off_axis),
            "request_step": self.request_step,
        }


class ReachyNodEnv(GestureEnv):
    """Nod on request: ``count`` pitch oscillations (down first) of the requested amplitude.

    Amplitudes 10-20° by default (allowed 5-30°), 2 or 3 cycles of 0.8 s. Success and observations: see
    :class:`GestureEnv`.

    Example:
        >>> env = ReachyNodEnv(counts=(1,), amplitude_range_deg=(15, 15))
        >>> _, info = env.reset(seed=3)
        >>> info["requested_cycles"], round(info["requested_amplitude_deg"])
        (1, 15)
    """

    axis: ClassVar[int] = _PITCH
    amplitude_limits_deg: ClassVar[tuple[float, float]] = (5.0, 30.0)
    default_amplitude_deg: ClassVar[tuple[float, float]] = (10.0, 20.0)


class ReachyShakeEnv(GestureEnv):
    """Shake the head on request: ``count`` yaw oscillations (left first) of the requested amplitude.

    Amplitudes 15-30° by default (allowed 5-40°), 2 or 3 cycles of 0.8 s. Success and observations: see
    :class:`GestureEnv`.

    Example:
        >>> env = ReachyShakeEnv()
        >>> _, info = env.reset(seed=0)
        >>> 15 <= info["requested_amplitude_deg"] <= 30
        True
    """

    axis: ClassVar[int] = _YAW
    amplitude_limits_deg: ClassVar[tuple[float, float]] = (5.0, 40.0)
    default_amplitude_deg: ClassVar[tuple[float, float]] = (15.0, 30.0)
