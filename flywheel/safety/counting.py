"""Counting a monitor-only safety layer over a Stable-Baselines3 vec env: a batch of steps at a time.

A run without ``safety: true`` only *counts* violations (``mode="monitor"``, ``penalty_weight=0``): nothing
the envs receive or return changes. Counting does not need to sit inside every env copy, one action at a
time: :class:`VecSafetyCounter` wraps the vec env, keeps the actions every copy receives (and which steps
start an episode) and counts them with numpy every :data:`BATCH_STEPS` steps, or when
:attr:`~VecSafetyCounter.safety_stats` is read. The counts are exactly what a
:class:`~flywheel.safety.wrapper.SafetyWrapper` in ``monitor`` mode inside each copy counts (the same
thresholds and float64 arithmetic; rate limits from the previous *finite* value of each dimension, from the
rest pose after every reset; a non-finite action counts as one ``finite`` violation per bad component and
hides its other checks, as :meth:`~flywheel.safety.limits.SafetyLayer.validate` does).

Enforcing (clipping) and penalties change what an env sees, so they stay per step in ``SafetyWrapper``.

Example:
    >>> import gymnasium as gym, flywheel.envs
    >>> from stable_baselines3.common.vec_env import DummyVecEnv
    >>> from flywheel.safety.limits import SafetyLayer
    >>> make = lambda: gym.make("flywheel/Track-v0")
    >>> layer = SafetyLayer.from_env(make(), {"limits": {"throttle": [0, 0.5]}, "mode": "monitor"})
    >>> venv = VecSafetyCounter(DummyVecEnv([make, make]), layer)
    >>> _ = venv.reset()
    >>> _ = venv.step(np.array([[0.0, 0.9], [0.0, 0.2]], np.float32))
    >>> venv.safety_stats.to_dict()
    {'actions': 2, 'violating_actions': 1, 'violation_rate': 0.5, 'violations': {'throttle.range': 1}}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from flywheel.safety.limits import SafetyLayer, SafetyStats

#: Steps kept before they are counted (bounds the memory; counting is per batch, never per step).
BATCH_STEPS = 1024


def count_violations(layer: SafetyLayer, actions: np.ndarray, starts: np.ndarray,
                     previous: np.ndarray) -> tuple[SafetyStats, np.ndarray]:
    """Count the violations of ``T`` steps of ``n`` envs, as ``n`` monitor-mode layers stepped one by one would.

    Args:
        layer: the limits (its ``low``, ``high``, ``rate``, ``tol``, ``rest`` and the action map).
        actions: ``[T, n, m]`` normalised actions, in the order the envs received them.
        starts: ``[T, n]`` booleans, true where the env was reset just before that step.
        previous: ``[n, m]`` each env's previous physical value before the first step (finite).

    Returns:
        The counts of these steps, and ``previous`` after them (to carry into the next batch).

    Example:
        >>> from flywheel.safety.limits import ActionDimension
        >>> layer = SafetyLayer([ActionDimension("throttle", 0, 1)], {"rate_limits": {"throttle": 0.1}})
        >>> stats, last = count_violations(layer, np.array([[[0.05]], [[0.5]], [[0.08]]]),
        ...                                np.array([[True], [False], [True]]), np.zeros((1, 1)))
        >>> stats.violating_actions, dict(stats.violations), last.tolist()  # 0.05 -> 0.5 is too fast
        (1, {'throttle.rate': 1}, [[0.08]])
    """
    phys = layer.offset + layer.scale * np.asarray(actions, dtype=np.float64)
    finite = np.isfinite(phys)
    # candidates[t] is what step t's rate is checked against, NaN where it is the last finite value before
    candidates = np.concatenate([previous[None], np.where(finite, phys, np.nan)])
    candidates[:-1][starts] = layer.rest
    known = np.where(np.isnan(candidates), 0, np.arange(len(candidates))[:, None, None])
    filled = np.take_along_axis(candidates, np.maximum.accumulate(known, axis=0), axis=0)
    kinds = {  # a non-finite component is a `finite` violation; the others are still checked
        "range": finite & ((phys < layer.low - layer.tol) | (phys > layer.high + layer.tol)),
        "rate": finite & (np.abs(phys - filled[:-1]) > layer.rate + layer.tol),
        "finite": ~finite,
    }
    violating = (kinds["range"] | kinds["rate"] | kinds["finite"]).any(axis=2)
    stats = SafetyStats(actions=int(starts.size), violating_actions=int(violating.sum()))
    for kind, broken in kinds.items():
        for name, times in zip(layer.names, broken.sum(axis=(0, 1)).tolist(), strict=True):
            if times:
                stats.violations[f"{name}.{kind}"] += times
    return stats, filled[-1]


class VecSafetyCounter(VecEnvWrapper):
    """Counts the violations of the actions every copy of ``venv`` receives (see the module docstring).

    Args:
        venv: the vec env.
        layer: the limits, built on one copy's continuous actions (:meth:`SafetyLayer.from_env`).
        table: for copies that decode discrete actions (``DiscretizeAction``), its table: row ``i`` is the
            continuous action of index ``i``.
    """

    def __init__(self, venv: VecEnv, layer: SafetyLayer, table: np.ndarray | None = None) -> None:
        super().__init__(venv)
        self.layer = layer
        self.table = table
        self._stats = SafetyStats()
        self._previous = np.tile(layer.rest, (self.num_envs, 1))
        self._starts = np.ones(self.num_envs, dtype=bool)
        self._actions: list[np.ndarray] = []
        self._step_starts: list[np.ndarray] = []

    @property
    def safety_stats(self) -> SafetyStats:
        """The counters of every step so far (actions, violating actions, violations per limit)."""
        self._count()
        return self._stats

    def reset(self) -> Any:
        """Reset every copy: the next step of each starts an episode (rate checks from the rest pose)."""
        obs = self.venv.reset()
        self._starts = np.ones(self.num_envs, dtype=bool)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Keep the actions (and which of them start an episode), then send them on unchanged."""
        self._actions.append(np.array(actions))
        self._step_starts.append(self._starts)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        """The copies' step; a copy that is done was reset, so its next step starts an episode."""
        obs, rewards, dones, infos = self.venv.step_wait()
        self._starts = np.asarray(dones, dtype=bool)
        if len(self._actions) >= BATCH_STEPS:
            self._count()
        return obs, rewards, dones, infos

    def _count(self) -> None:
        if not self._actions:
            return
        actions = np.stack(self._actions)
        if self.table is not None:
            actions = self.table[actions.reshape(len(self._actions), self.num_envs)]
        actions = actions.reshape(len(self._actions), self.num_envs, len(self.layer.names))
        stats, self._previous = count_violations(self.layer, actions, np.stack(self._step_starts), self._previous)
        self._actions, self._step_starts = [], []
        self._stats.add(stats)


def vec_safety_stats(venv: Any) -> SafetyStats | None:
    """The safety counters of a Stable-Baselines3 vec env, or ``None`` when nothing counts its actions.

    From a :class:`VecSafetyCounter` in its wrapper chain, else the sum of every copy's
    :class:`~flywheel.safety.wrapper.SafetyWrapper`.

    Example:
        >>> from flywheel.training.envs import make_vec_env
        >>> venv = make_vec_env("flywheel/Track-v0", n_envs=2, safety={"mode": "monitor", "penalty_weight": 0})
        >>> vec_safety_stats(venv).actions
        0
    """
    from flywheel.safety.wrapper import find_safety_wrapper

    layer = venv
    while isinstance(layer, VecEnvWrapper):
        if isinstance(layer, VecSafetyCounter):
            return layer.safety_stats
        layer = layer.venv
    total, found = SafetyStats(), False
    for env in getattr(layer, "envs", []):
        wrapper = find_safety_wrapper(env)
        if wrapper is not None:
            found = True
            total.add(wrapper.safety_stats)
    return total if found else None
