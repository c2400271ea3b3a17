"""The safety layer: per-dimension action ranges and rate limits, checked and clipped on every action.

Where the limits come from:

1. the **robot description** (:func:`describe_actions`): each action dimension of the env with its name, its
   physical unit and range, and how a policy's normalised action maps onto it. It is derived from the env's
   action space and the task's actuator ranges:

   =============================  ===========================================================================
   env                            dimensions (unit, range)
   =============================  ===========================================================================
   ``Track-v0`` (and Donkey)      ``steer`` (fraction of full lock, [-1, 1]), ``throttle`` ([0, 1])
   Reachy, ``head_pose``          ``roll`` (deg, ±30), ``pitch`` (deg, ±45), ``yaw`` (deg, ±45), ``z`` (m, ±0.02)
   Reachy, ``motors``             ``yaw_body``, ``stewart_1`` … ``stewart_6`` (rad, each actuator's ctrlrange)
   any other ``Box``              ``a0`` … ``a{n-1}`` (the space's bounds)
   =============================  ===========================================================================

2. the project's **safety config** (:class:`~flywheel.safety.config.SafetyConfig`), which may narrow a range
   and add a rate limit (largest change per control step) per dimension, in the same units.

:meth:`SafetyLayer.validate` names each violated limit (dimension, value, limit); :meth:`SafetyLayer.clip`
returns the nearest action inside every limit; :meth:`SafetyLayer.apply` does both for one control step,
remembers the action for the next rate check, and counts and records every violation of the episode.

Example:
    >>> import gymnasium as gym, flywheel.envs
    >>> layer = SafetyLayer.from_env(gym.make("flywheel/ReachyLookAt-v0"), {"limits": {"pitch": [-20, 20]}})
    >>> [str(v) for v in layer.validate([0.0, 0.6, 0.0, 0.0])]  # pitch 0.6 × 45° = 27°
    ['pitch = 27 deg is outside [-20, 20] deg']
    >>> [round(float(x), 3) for x in layer.clip([0.0, 0.6, 0.0, 0.0])]  # back to 20°
    [0.0, 0.444, 0.0, 0.0]
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flywheel.errors import InvalidInput
from flywheel.safety.config import ALLOWED, SafetyConfig, parse_safety_config

#: A value this close to a limit (relative to the dimension's scale) is inside it (float32 actions).
TOLERANCE = 1e-5


@dataclass(frozen=True)
class ActionDimension:
    """One action dimension as the robot description states it.

    The physical value of a normalised action component ``a`` is ``offset + scale * a``.

    Attributes:
        name: e.g. ``pitch``, ``throttle``, ``stewart_3``.
        low, high: the range the robot allows, in ``unit``.
        unit: ``deg``, ``m``, ``rad`` or ``""`` (a plain fraction).
        scale, offset: the map from the policy's action to the physical value.
        rest: the physical value right after a reset (the first rate check starts from it).
        safe: the physical value of the safe action (emergency stop), or ``None`` to hold the last command.
    """

    name: str
    low: float
    high: float
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    rest: float = 0.0
    safe: float | None = None


@dataclass(frozen=True)
class Violation:
    """One limit an action broke.

    Attributes:
        dimension: the dimension's name.
        kind: ``range``, ``rate`` (change per step) or ``finite`` (NaN or inf).
        value: the offending physical value (for ``rate``: the change from the previous action).
        limit: ``(low, high)`` for ``range``; the largest allowed change for ``rate``; ``None`` for ``finite``.
        unit: the dimension's unit.
    """

    dimension: str
    kind: str
    value: float
    limit: tuple[float, float] | float | None
    unit: str = ""

    @property
    def key(self) -> str:
        """``dimension.kind``, e.g. ``pitch.range`` (the counter key)."""
        return f"{self.dimension}.{self.kind}"

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "range" and isinstance(self.limit, tuple):
            return f"{self.dimension} = {self.value:g}{unit} is outside [{self.limit[0]:g}, {self.limit[1]:g}]{unit}"
        if self.kind == "rate":
            return f"{self.dimension} changed by {self.value:g}{unit} in one step (limit {self.limit:g}{unit})"
        return f"{self.dimension} = {self.value} is not a finite number"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (for ``info`` and episode records)."""
        limit = list(self.limit) if isinstance(self.limit, tuple) else self.limit
        return {"dimension": self.dimension, "kind": self.kind, "value": self.value, "limit": limit, "unit": self.unit}


@dataclass
class SafetyStats:
    """Counters of a safety layer since it was built (or since :meth:`reset_counters`).

    Attributes:
        actions: actions checked.
        violating_actions: actions that broke at least one limit.
        violations: limit key (``pitch.range``) -> times broken.
    """

    actions: int = 0
    violating_actions: int = 0
    violations: Counter[str] = field(default_factory=Counter)

    @property
    def violation_rate(self) -> float:
        """Share of actions that broke a limit (0.0 before any action).

        Example:
            >>> SafetyStats(actions=200, violating_actions=1).violation_rate
            0.005
        """
        return self.violating_actions / self.actions if self.actions else 0.0

    def add(self, other: SafetyStats) -> None:
        """Add ``other``'s counters to these (summing copies of an env, or batches of steps)."""
        self.actions += other.actions
        self.violating_actions += other.violating_actions
        self.violations.update(other.violations)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counters."""
        return {"actions": self.actions, "violating_actions": self.violating_actions,
                "violation_rate": self.violation_rate, "violations": dict(self.violations)}


@dataclass(frozen=True)
class SafeStep:
    """What :meth:`SafetyLayer.apply` decided for one action: the action to send and the limits it broke."""

    action: np.ndarray
    violations: list[Violation]


# ---------------------------------------------------------------------------------------------- description


def describe_actions(env: gym.Env) -> list[ActionDimension]:
    """The robot description of ``env``'s actions (see the module docstring), outermost ``Box`` action space.

    Raises:
        InvalidInput: the action space is not a flat ``Box`` (``field="env.action_space"``); build the layer
            under ``DiscretizeAction``, where actions are still continuous.

    Example:
        >>> import gymnasium as gym, flywheel.envs
        >>> [(d.name, d.low, d.high) for d in describe_actions(gym.make("flywheel/Track-v0"))]
        [('steer', -1.0, 1.0), ('throttle', 0.0, 1.0)]
    """
    box = env.action_space
    if not (isinstance(box, spaces.Box) and len(box.shape) == 1):
        raise InvalidInput(f"cannot limit actions of {box}", field="env.action_space", allowed="Box of shape (m,)")
    task = env.unwrapped
    low, high = box.low.astype(np.float64), box.high.astype(np.float64)
    reachy = sys.modules.get("flywheel.envs.reachy.base")
    if reachy is not None and isinstance(task, reachy.ReachyEnv) and np.all(low == -1) and np.all(high == 1):
        return _reachy_dimensions(task)
    if type(task).__name__ in ("TrackEnv", "DonkeyEnv") and box.shape == (2,):
        return [
            ActionDimension("steer", float(low[0]), float(high[0]), safe=0.0),
            ActionDimension("throttle", float(low[1]), float(high[1]), rest=max(0.0, float(low[1])),
                            safe=min(max(0.0, float(low[1])), float(high[1]))),
        ]
    return [ActionDimension(f"a{i}", float(lo), float(hi), rest=float(np.clip(0.0, lo, hi)))
            for i, (lo, hi) in enumerate(zip(low, high, strict=True))]


def _reachy_dimensions(task: Any) -> list[ActionDimension]:
    from flywheel.envs.reachy.kinematics import HEAD_POSE_LIMITS
    from flywheel.envs.reachy.model import CONTROLLED_ACTUATORS

    if task.action_mode == "head_pose":
        dims = []
        for name in ("roll", "pitch", "yaw", "z"):
            limit = HEAD_POSE_LIMITS[name]
            unit, scale = ("m", limit) if name == "z" else ("deg", math.degrees(limit))
            dims.append(ActionDimension(name, -scale, scale, unit, scale=scale))
        return dims
    model = task.model
    lows, highs = model.ctrl_low, model.ctrl_high
    homes = np.asarray(model.home_ctrl)[: len(lows)]
    return [
        ActionDimension(name, float(lo), float(hi), "rad", scale=float(hi - lo) / 2, offset=float(hi + lo) / 2,
                        rest=float(home))
        for name, lo, hi, home in zip(CONTROLLED_ACTUATORS, lows, highs, homes, strict=True)
    ]


# ---------------------------------------------------------------------------------------------- the layer


class SafetyLayer:
    """Checks and clips actions against per-dimension ranges and rate limits (see the module docstring).

    Args:
        dimensions: the robot description (:func:`describe_actions`).
        config: a :class:`SafetyConfig` or its dict; ranges may only narrow the description's.

    Raises:
        InvalidInput: an unknown dimension (``limits.<name>`` / ``rate_limits.<name>``, allowed: the names), a
            range outside the robot's (``limits.<name>``), an inverted range or a rate limit ≤ 0.

    Example:
        >>> dims = [ActionDimension("steer", -1, 1), ActionDimension("throttle", 0, 1)]
        >>> layer = SafetyLayer(dims, {"rate_limits": {"throttle": 0.1}})
        >>> [round(float(x), 3) for x in layer.apply([0.0, 1.0]).action]  # from rest (0) the throttle may rise by 0.1
        [0.0, 0.1]
        >>> layer.stats.violations
        Counter({'throttle.rate': 1})
    """

    def __init__(self, dimensions: Sequence[ActionDimension], config: SafetyConfig | dict[str, Any] | None = None):
        self.config = parse_safety_config(config)
        self.dimensions = list(dimensions)
        self.names = [d.name for d in self.dimensions]
        by_name = {d.name: d for d in self.dimensions}
        for section in ("limits", "rate_limits"):
            for name in getattr(self.config, section):
                if name not in by_name:
                    raise InvalidInput(f"unknown action dimension {name!r}", field=f"{section}.{name}",
                                       allowed=self.names)
        for name, (low, high) in self.config.limits.items():
            dim = by_name[name]
            if low < dim.low - _tol(dim) or high > dim.high + _tol(dim):
                unit = f" {dim.unit}" if dim.unit else ""
                raise InvalidInput(f"[{low:g}, {high:g}] is wider than the robot allows", field=f"limits.{name}",
                                   allowed=f"{ALLOWED['limits']} within [{dim.low:g}, {dim.high:g}]{unit}")
        ranges = [self.config.limits.get(d.name, (d.low, d.high)) for d in self.dimensions]
        self.low = np.array([r[0] for r in ranges], dtype=np.float64)
        self.high = np.array([r[1] for r in ranges], dtype=np.float64)
        self.rate = np.array([self.config.rate_limits.get(n, np.inf) for n in self.names], dtype=np.float64)
        self.scale = np.array([d.scale for d in self.dimensions], dtype=np.float64)
        self.offset = np.array([d.offset for d in self.dimensions], dtype=np.float64)
        self.tol = np.array([_tol(d) for d in self.dimensions], dtype=np.float64)
        # The per-step check in plain floats: numpy on a handful of values costs more than the task's own step.
        self._bounds = list(zip((self.low - self.tol).tolist(), (self.high + self.tol).tolist(),
                                (self.rate + self.tol).tolist(), strict=True))
        self.rest = np.clip([d.rest for d in self.dimensions], self.low, self.high)
        self.enforce = self.config.mode == "enforce"
        self.stats = SafetyStats()
        self.episode: list[dict[str, Any]] = []
        self.step_index = 0
        self.previous = self.rest.copy()

    @classmethod
    def from_env(cls, env: gym.Env, config: SafetyConfig | dict[str, Any] | None = None) -> SafetyLayer:
        """The layer for ``env``'s robot description and a project's safety config.

        Example:
            >>> import gymnasium as gym, flywheel.envs
            >>> SafetyLayer.from_env(gym.make("flywheel/Track-v0"), {"limits": {"gear": [0, 1]}})
            Traceback (most recent call last):
            ...
            flywheel.errors.InvalidInput: limits.gear: unknown action dimension 'gear' (allowed: ['steer', 'throttle'])
        """
        return cls(describe_actions(env), config)

    # --- conversions ------------------------------------------------------------------------------------

    def to_physical(self, action: Any) -> np.ndarray:
        """The action in the robot's units (``offset + scale * action``)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != self.scale.shape:
            raise InvalidInput(f"got shape {a.shape}", field="action", allowed=f"{len(self.names)} values {self.names}")
        return self.offset + self.scale * a

    def to_action(self, physical: np.ndarray) -> np.ndarray:
        """The normalised action of a physical value (inverse of :meth:`to_physical`), as float32."""
        return ((physical - self.offset) / self.scale).astype(np.float32)

    # --- checks -----------------------------------------------------------------------------------------

    def validate(self, action: Any) -> list[Violation]:
        """Every limit ``action`` breaks, from the previous action for rate limits (nothing is changed).

        Example:
            >>> layer = SafetyLayer([ActionDimension("throttle", 0, 1)], {"limits": {"throttle": [0, 0.5]}})
            >>> [v.to_dict() for v in layer.validate([0.8])]
            [{'dimension': 'throttle', 'kind': 'range', 'value': 0.8, 'limit': [0.0, 0.5], 'unit': ''}]
        """
        return self._violations(self.to_physical(action))

    def _violations(self, phys: np.ndarray) -> list[Violation]:
        """The limits the physical action ``phys`` breaks (see :meth:`validate`)."""
        # Fast path: every value inside its range and rate (NaN fails every comparison and falls through).
        for value, previous, (low, high, rate) in zip(phys.tolist(), self.previous.tolist(), self._bounds,
                                                      strict=True):
            if not (low <= value <= high and -rate <= value - previous <= rate):
                break
        else:
            return []
        # A non-finite component is a `finite` violation; the others are still checked for range and rate.
        finite = np.isfinite(phys)
        outside = finite & ((phys < self.low - self.tol) | (phys > self.high + self.tol))
        fast = finite & (np.abs(phys - self.previous) > self.rate + self.tol)
        if finite.all() and not (outside.any() or fast.any()):
            return []
        found = []
        for i, dim in enumerate(self.dimensions):
            value = float(phys[i])
            if not math.isfinite(value):
                found.append(Violation(dim.name, "finite", value, None, dim.unit))
                continue
            if outside[i]:
                found.append(Violation(dim.name, "range", round(value, 9), (float(self.low[i]), float(self.high[i])),
                                       dim.unit))
            if fast[i]:
                found.append(Violation(dim.name, "rate", round(float(abs(value - self.previous[i])), 9),
                                       float(self.rate[i]), dim.unit))
        return found

    def clip(self, action: Any) -> np.ndarray:
        """The nearest action inside every range and within the rate limits of the previous action.

        Non-finite components become the dimension's safe value (or the previous value when it holds).
        """
        phys = self._clip_physical(self.to_physical(action))
        return self.to_action(phys)

    def _clip_physical(self, phys: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(phys)
        if bad.any():
            phys = np.where(bad, self._safe_physical(), phys)
        phys = np.clip(phys, self.previous - self.rate, self.previous + self.rate)
        return np.clip(phys, self.low, self.high)

    def apply(self, action: Any) -> SafeStep:
        """One control step: validate, clip (``enforce`` mode), count, record, remember for the rate check.

        In ``monitor`` mode the action goes out unchanged; violations are still counted and recorded.
        """
        phys = self.to_physical(action)
        violations = self._violations(phys)
        if self.enforce or violations:
            safe_phys = self._clip_physical(phys)
            out = self.to_action(safe_phys) if self.enforce else np.asarray(action, dtype=np.float32).reshape(-1)
        else:
            safe_phys, out = phys, np.asarray(action, dtype=np.float32).reshape(-1)
        if self.enforce:
            self.previous = safe_phys
        elif violations:
            self.previous = np.where(np.isfinite(phys), phys, self.previous)
        else:
            self.previous = phys  # finite: it passed every check
        self.stats.actions += 1
        if violations:
            self.stats.violating_actions += 1
            self.stats.violations.update(v.key for v in violations)
            self.episode.extend({"step": self.step_index, **v.to_dict()} for v in violations)
        self.step_index += 1
        return SafeStep(out, violations)

    def reset(self) -> None:
        """Start an episode: the rate check starts from the rest pose; the episode record is cleared."""
        self.previous = self.rest.copy()
        self.episode = []
        self.step_index = 0

    def reset_counters(self) -> None:
        """Zero the counters (:attr:`stats`)."""
        self.stats = SafetyStats()

    # --- the safe action --------------------------------------------------------------------------------

    def _safe_physical(self) -> np.ndarray:
        safe = np.array([np.nan if d.safe is None else d.safe for d in self.dimensions], dtype=np.float64)
        return np.clip(np.where(np.isnan(safe), self.previous, safe), self.low, self.high)

    def safe_action(self, last: Any | None = None) -> np.ndarray:
        """The task's safe action: fixed values (car: no throttle, wheels straight) or the last command held.

        Args:
            last: the last action sent (normalised); default the layer's previous action.

        Example:
            >>> dims = [ActionDimension("steer", -1, 1, safe=0.0), ActionDimension("throttle", 0, 1, safe=0.0)]
            >>> SafetyLayer(dims).safe_action([0.3, 0.9]).tolist()
            [0.0, 0.0]
            >>> SafetyLayer([ActionDimension("yaw", -45, 45, "deg", scale=45)]).safe_action([0.5]).tolist()
            [0.5]
        """
        held = self.previous if last is None else self.to_physical(last)
        held = np.where(np.isfinite(held), held, self.rest)
        safe = np.array([np.nan if d.safe is None else d.safe for d in self.dimensions], dtype=np.float64)
        return self.to_action(np.clip(np.where(np.isnan(safe), held, safe), self.low, self.high))


def _tol(dim: ActionDimension) -> float:
    return TOLERANCE * max(abs(dim.scale), 1e-9)
