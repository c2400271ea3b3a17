"""Replay a counterexample through onnxruntime before it is reported as a refutation.

A counterexample is an input of a query's network (the observation; the start state of a horizon; the
observation and its perturbation for robustness over a box). :func:`replay` runs the *exported ONNX file*
on it (for a horizon: in closed loop with the declared dynamics) and measures the property's own
quantity. Only a violation measured there counts; otherwise the counterexample is reported as spurious
(numerical tolerance of a solver, float32 rounding), never as a refutation.

Example:
    >>> r = replay(policy, prop, query, x)  # doctest: +SKIP
    >>> r.reproduced, r.measured  # doctest: +SKIP
    (True, 0.93)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel.safety.verify.query import Query
from flywheel.safety.verify.spec import Horizon, OutputBounds, Property


@dataclass
class Replay:
    """``measured``: the quantity onnxruntime gives (an action, a joint position, an action change);
    ``reproduced``: it is beyond the limit; ``input``/``detail``: what to show a user."""

    reproduced: bool
    measured: float
    limit: float
    input: list[float]
    detail: dict[str, Any]


def _beyond(value: float, query: Query) -> bool:
    side, limit = query.tag["side"], query.tag["limit"]
    return value > limit if side == "high" else value < limit


def replay(policy: Any, prop: Property, query: Query, x: np.ndarray) -> Replay:
    """Measure ``query``'s quantity at ``x`` with ``policy`` (an :class:`~flywheel.training.onnx_export.OnnxPolicy`).

    ``x`` is first clipped into the query's box (solvers answer within a tolerance).
    """
    x = np.clip(np.asarray(x, np.float64), query.lo, query.hi)
    tag = query.tag
    if isinstance(prop, OutputBounds):
        action = np.asarray(policy(x.astype(np.float32)), np.float64)
        value = float(action[tag["action"]])
        detail = {"observation": x.tolist(), "action": action.tolist()}
    elif isinstance(prop, Horizon):
        trajectory = simulate(policy, prop, x)
        value = float(trajectory[tag["step"], tag["joint"]])
        detail = {"start_state": x.tolist(), "trajectory": trajectory.tolist()}
    else:
        j = tag["action"]
        if "point" in tag:
            base = np.asarray(prop.points[tag["point"]], np.float64)  # type: ignore[index]
            moved = x
        else:
            n = x.size // 2
            base, moved = x[:n], x[:n] + x[n:]
        a0 = np.asarray(policy(base.astype(np.float32)), np.float64)
        a1 = np.asarray(policy(moved.astype(np.float32)), np.float64)
        change = float(a1[j] - a0[j])
        limit = prop.delta
        reproduced = abs(change) > limit
        detail = {"observation": base.tolist(), "perturbed": moved.tolist(), "action": a0.tolist(),
                  "perturbed_action": a1.tolist()}
        return Replay(reproduced, change, limit, x.tolist(), detail)
    return Replay(_beyond(value, query), value, float(tag["limit"]), x.tolist(), detail)


def simulate(policy: Any, prop: Horizon, q0: np.ndarray) -> np.ndarray:
    """The joint states ``q0 … qH`` of the closed loop with onnxruntime's actions, shape ``(H + 1, nq)``."""
    matrix = np.asarray(prop.observation.state_matrix, np.float64)
    offset = np.asarray(prop.observation.offset, np.float64)
    nq = matrix.shape[1]
    indices = prop.action_indices if prop.action_indices is not None else list(range(nq))
    lo = hi = None
    if prop.action_clip is not None:
        lo = np.array([-np.inf if v is None else v for v in prop.action_clip.low])
        hi = np.array([np.inf if v is None else v for v in prop.action_clip.high])
    q = np.asarray(q0, np.float64)
    states = [q]
    for _ in range(prop.steps):
        action = np.asarray(policy((matrix @ q + offset).astype(np.float32)), np.float64)[indices]
        if lo is not None:
            action = np.clip(action, lo, hi)
        q = q + prop.dt * action
        states.append(q)
    return np.stack(states)
