"""The light part every template module shares at import time: the RL config fields, code version, atomic writes.

Nothing here imports torch or Stable-Baselines3, so the template registry (config schemas and defaults) loads
fast; the training machinery lives in :mod:`flywheel.training.templates.runtime`, imported inside ``run``.

Example:
    >>> RLConfig(net_arch=[32]).net_arch
    [32]
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from flywheel.safety.config import SafetyConfig
from flywheel.training.base import TemplateConfig


class RLConfig(TemplateConfig):
    """Settings the Stable-Baselines3 templates share (on top of :class:`TemplateConfig`)."""

    net_arch: list[int] = Field([64, 64], min_length=1, max_length=8,
                                description="Hidden layer sizes of the policy (and value/Q) networks.")
    speed_reward: bool = Field(False, description="Train on the DonkeyCar reward speed × (1 − |cte|/max_cte) "
                               "(car tasks); evaluation always reports the task's own reward.")
    curriculum: bool = Field(False, description="Raise the task's difficulty as the training success rate rises.")
    eval_every: int = Field(0, ge=0, le=10**9, description="Evaluate every this many steps into eval/ metrics "
                            "(0 = only the final evaluation).")
    safety: bool = Field(False, description="Train through the safety layer: clip exploration actions into the "
                         "limits and add r_safety penalties (off: violations are only counted).")
    safety_config: SafetyConfig | None = Field(None, description="The project's safety config (limits, rate_limits, "
                                               "penalty_weight); default the robot's own limits.")

    @field_validator("net_arch")
    @classmethod
    def _layer_sizes(cls, value: list[int]) -> list[int]:
        if any(n < 1 or n > 4096 for n in value):
            raise ValueError("every layer needs 1..4096 units")
        return value


def code_version() -> str:
    """The git commit of the code (``git rev-parse HEAD``), else the installed package version.

    Example:
        >>> len(code_version()) > 0
        True
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("flywheel")
        except PackageNotFoundError:
            return "unknown"


def wrapper_kwargs(config: TemplateConfig) -> dict[str, Any]:
    """The :func:`~flywheel.training.envs.make_env` wrapper arguments a config asks for in training."""
    return {
        "speed_reward": bool(getattr(config, "speed_reward", False)),
        "curriculum": {} if getattr(config, "curriculum", False) else None,
        "safety": safety_config(config),
    }


def safety_config(config: TemplateConfig, *, evaluation: bool = False) -> SafetyConfig | None:
    """The safety layer a run uses: enforced with ``safety: true``, else counting only (``monitor``).

    Every run reports ``safety/violation_rate``; evaluation never shapes the reward (``penalty_weight=0``).
    ``None`` for configs without the field (nothing to report). Envs whose actions are not a flat ``Box``
    before discretisation get no layer either.

    Example:
        >>> safety_config(RLConfig(safety=True, safety_config={"limits": {"throttle": [0, 0.5]}})).mode
        'enforce'
        >>> safety_config(RLConfig()).mode, safety_config(RLConfig(), evaluation=True).penalty_weight
        ('monitor', 0.0)
    """
    if not hasattr(config, "safety"):
        return None
    base = config.safety_config or SafetyConfig()
    update: dict[str, Any] = {} if config.safety else {"mode": "monitor", "penalty_weight": 0.0}
    if evaluation:
        update["penalty_weight"] = 0.0
    return base.model_copy(update=update) if update else base


