"""Runners: where jobs run. `local` is built in; more (`ray`, `skypilot`) register in RUNNERS.

Example:
    >>> get_runner("local").name
    'local'
"""

from __future__ import annotations

from collections.abc import Callable

from flywheel.errors import InvalidInput
from flywheel.jobs.runners.base import Exit, Handle, Runner
from flywheel.jobs.runners.local import LocalRunner
from flywheel.jobs.runners.ray import RayRunner
from flywheel.jobs.runners.skypilot import SkyPilotRunner

#: Runner name -> factory. One instance per process (a runner may remember the children it started).
RUNNERS: dict[str, Callable[[], Runner]] = {"local": LocalRunner, "ray": RayRunner, "skypilot": SkyPilotRunner}

_instances: dict[str, Runner] = {}


def get_runner(name: str) -> Runner:
    """The runner called `name` (one per process), or InvalidInput naming the runners that exist."""
    factory = RUNNERS.get(name)
    if factory is None:
        raise InvalidInput(f"unknown runner {name!r}", field="runner", allowed=sorted(RUNNERS))
    if name not in _instances:
        _instances[name] = factory()
    return _instances[name]


__all__ = ["RUNNERS", "Exit", "Handle", "Runner", "get_runner"]
