"""A fixed-rate control loop: policy → safety layer → emergency-stop guard → env, once per tick.

This is the runtime's inner loop in its smallest form (the deploy runtime drives a real robot with the same
order): at each tick the policy proposes an action, the :class:`~flywheel.safety.limits.SafetyLayer` clips it
into the limits, and the :class:`~flywheel.safety.estop.EstopGuard` replaces it with the task's safe action
while the emergency stop is latched. Ticks are scheduled on absolute deadlines (``start + k / hz``), so a slow
tick does not shift the ones after it. Episodes that end are reset and the loop goes on.

Every tick is recorded (:class:`Tick`: index, the monotonic time the action went out, latched or not) in a
bounded history, which is what the latency test and ``benchmarks/estop_latency.py`` read.

Example:
    >>> import gymnasium as gym, flywheel.envs
    >>> env = gym.make("flywheel/Track-v0")
    >>> loop = ControlLoop(env, lambda obs: np.array([0.0, 0.5]), hz=200)
    >>> len(loop.run(ticks=5))
    5
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from flywheel.errors import InvalidInput
from flywheel.safety.estop import EstopGuard
from flywheel.safety.limits import SafetyLayer


@dataclass(frozen=True)
class Tick:
    """One control tick: its index, when its action went out (``time.monotonic``), whether it was the
    emergency stop's safe action, and the action sent."""

    index: int
    time: float
    latched: bool
    action: np.ndarray


class ControlLoop:
    """Run ``policy`` on ``env`` at ``hz`` through an optional safety layer and emergency-stop guard.

    Args:
        env: the env (simulator or robot).
        policy: ``obs -> action``.
        hz: control rate (1..1000), e.g. 50 for the Reachy Mini and the car.
        layer: the safety layer (clips actions) or ``None``.
        guard: the emergency-stop guard or ``None``.
        seed: the first reset's seed.
        history: ticks kept in :attr:`ticks`.
    """

    def __init__(self, env: gym.Env, policy: Callable[[Any], Any], *, hz: float = 50.0,
                 layer: SafetyLayer | None = None, guard: EstopGuard | None = None, seed: int = 0,
                 history: int = 100_000) -> None:
        if isinstance(hz, bool) or not isinstance(hz, int | float) or not 1 <= hz <= 1000:
            raise InvalidInput(f"got {hz!r}", field="hz", allowed="a rate in 1..1000 Hz")
        self.env, self.policy, self.layer, self.guard = env, policy, layer, guard
        self.period = 1.0 / float(hz)
        self.seed = seed
        self.ticks: deque[Tick] = deque(maxlen=history)
        self.overruns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def run(self, *, ticks: int | None = None) -> list[Tick]:
        """Run until :meth:`stop` (or for ``ticks`` ticks); returns the recorded ticks."""
        env = self.env
        obs, _ = env.reset(seed=self.seed)
        if self.layer is not None:
            self.layer.reset()
        start = time.monotonic()
        k = 0
        while not self._stop.is_set() and (ticks is None or k < ticks):
            deadline = start + k * self.period
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -self.period:
                self.overruns += 1
            action = np.asarray(self.policy(obs))
            if self.layer is not None:
                action = self.layer.apply(action).action
            latched = False
            if self.guard is not None:
                action = self.guard.filter(action)
                latched = self.guard.latched
            self.ticks.append(Tick(k, time.monotonic(), latched, action))
            obs, _reward, terminated, truncated, _info = env.step(action)
            if terminated or truncated:
                obs, _ = env.reset()
                if self.layer is not None:
                    self.layer.reset()
            k += 1
        return list(self.ticks)

    def start(self) -> ControlLoop:
        """Run in a daemon thread (stop it with :meth:`stop`)."""

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # reported by stop(), not lost in the thread
                self.error = exc

        self._stop.clear()
        self._thread = threading.Thread(target=target, name="flywheel-control-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and re-raise what made it fail, if anything did."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def first_latched_after(self, t: float) -> Tick | None:
        """The first tick at or after monotonic time ``t`` whose action was the safe action."""
        for tick in list(self.ticks):
            if tick.time >= t and tick.latched:
                return tick
        return None
