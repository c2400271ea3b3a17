"""A project's safety config: narrower action ranges, rate limits and the training penalty, loadable from YAML.

The config speaks in the robot's own units, named by action dimension (see
:func:`flywheel.safety.limits.describe_actions`): degrees for the Reachy Mini head angles, metres for its
height, radians for its motors, plain numbers for the car's steer and throttle. Ranges may only *narrow*
what the robot description allows; that and the dimension names are checked when the config meets an env
(:class:`~flywheel.safety.limits.SafetyLayer`), since only the env knows its dimensions.

A ``safety.yaml``::

    limits:            # dimension: [low, high], in the dimension's unit
      pitch: [-20, 20]
      yaw: [-30, 30]
    rate_limits:       # dimension: largest change per control step, same unit
      yaw: 3.0
    penalty_weight: 1.0
    mode: enforce      # or monitor: count violations, change nothing

Example:
    >>> parse_safety_config({"limits": {"pitch": [-20, 20]}}).limits["pitch"]
    (-20.0, 20.0)
    >>> parse_safety_config({"rate_limits": {"yaw": -1}})
    Traceback (most recent call last):
    ...
    flywheel.errors.InvalidInput: rate_limits.yaw: must be > 0, got -1.0 (allowed: a number > 0 (unit per step))
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flywheel.errors import InvalidInput

MODES = ("enforce", "monitor")


class SafetyConfig(BaseModel):
    """Overrides of the robot description's action limits, and how violations are handled.

    Attributes:
        limits: dimension name -> ``(low, high)`` in that dimension's unit; must lie inside the robot's range.
        rate_limits: dimension name -> the largest change of that dimension per control step (> 0).
        penalty_weight: ``r_safety = -penalty_weight`` per violated limit in a step (training only; ≥ 0).
        mode: ``enforce`` clips every action into the limits; ``monitor`` only counts and records violations.
    """

    model_config = ConfigDict(extra="forbid")

    limits: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Dimension -> [low, high] in its unit (inside the robot's range)."
    )
    rate_limits: dict[str, float] = Field(
        default_factory=dict, description="Dimension -> largest change per control step (> 0), in its unit."
    )
    penalty_weight: float = Field(1.0, ge=0, le=1e6, description="r_safety = -penalty_weight per violated limit.")
    mode: Literal["enforce", "monitor"] = Field("enforce", description="enforce: clip actions; monitor: only count.")

    @field_validator("limits")
    @classmethod
    def _ranges(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError(f"{name}: [{low}, {high}] is not finite")
            if low > high:
                raise ValueError(f"{name}: range [{low:g}, {high:g}] is inverted")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        for name, rate in value.items():
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"{name}: must be > 0, got {rate!r}")
        return value


#: What each field accepts, for the errors.
ALLOWED = {
    "limits": "[low, high] with low <= high, in the dimension's unit",
    "rate_limits": "a number > 0 (unit per step)",
    "penalty_weight": "a number in [0, 1e6]",
    "mode": list(MODES),
}


def parse_safety_config(data: SafetyConfig | dict[str, Any] | None) -> SafetyConfig:
    """Validate a safety config given as a dict (or return a :class:`SafetyConfig` as it is).

    Raises:
        InvalidInput: naming the field (``limits.pitch``, ``rate_limits.yaw``, ``mode``, …) and its allowed values.

    Example:
        >>> parse_safety_config({"limits": {"pitch": [20, -20]}})
        Traceback (most recent call last):
        ...
        flywheel.errors.InvalidInput: limits.pitch: range [20, -20] is inverted (allowed: ...)
    """
    if isinstance(data, SafetyConfig):
        return data
    if data is None:
        return SafetyConfig()
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a mapping, got {type(data).__name__}", field="safety_config",
                           allowed=sorted(SafetyConfig.model_fields))
    unknown = sorted(set(data) - set(SafetyConfig.model_fields))
    if unknown:
        raise InvalidInput("unknown key", field=unknown[0], allowed=sorted(SafetyConfig.model_fields))
    try:
        return SafetyConfig.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidInput:
    error = exc.errors()[0]
    loc = [str(p) for p in error.get("loc", ())]
    top = loc[0] if loc else "safety_config"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    name, sep, rest = message.partition(": ")
    if sep and top in ("limits", "rate_limits") and len(loc) == 1:  # our validators name the dimension first
        return InvalidInput(rest, field=f"{top}.{name}", allowed=ALLOWED[top])
    field = ".".join(p for p in loc if not p.isdigit()) or top
    if "input" in error:
        message += f", got {error['input']!r}"
    return InvalidInput(message, field=field, allowed=ALLOWED.get(top))


def load_safety_config(path: Path | str) -> SafetyConfig:
    """Read a safety config from a YAML file.

    Raises:
        InvalidInput: the file is missing or not YAML (``field="safety_config"``), or a value is wrong.

    Example:
        >>> _ = Path("/tmp/fw-safety.yaml").write_text("limits:\\n  yaw: [-30, 30]\\n")
        >>> load_safety_config("/tmp/fw-safety.yaml").limits
        {'yaw': (-30.0, 30.0)}
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="safety_config",
                           allowed="a readable YAML file") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}".splitlines()[0], field="safety_config",
                           allowed="a YAML mapping") from None
    return parse_safety_config(data or {})
