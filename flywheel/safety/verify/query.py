"""A verification query: ``c · f(x) + d ≤ 0`` for every ``x`` in a box (torch-free, for the Marabou worker).

Every property of a spec (:mod:`flywheel.safety.verify.spec`) becomes one or more queries; a property is
proved when all its queries are.

Example:
    >>> from flywheel.safety.verify.network import Affine, Network
    >>> q = Query(Network([Affine(np.eye(1), np.zeros(1))]), np.zeros(1), np.ones(1), np.ones(1), -2.0)
    >>> q.value(np.array([[1.0]])).tolist()
    [-1.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flywheel.safety.verify.network import Network


@dataclass
class Query:
    """``c · f(x) + d ≤ 0`` for all ``x`` in ``[lo, hi]`` (``f`` = ``network``).

    Attributes:
        network: the network the query is about (the policy, or a network derived from it).
        lo: input box lower corner.
        hi: input box upper corner.
        c: the output row.
        d: the constant.
        name: a label, e.g. ``"action[2] <= 0.5"``.
        tag: what the query checks, for replay and reports (``{"kind": "output_bounds", "action": 2,
            "side": "high", "limit": 0.5}``).
    """

    network: Network
    lo: np.ndarray
    hi: np.ndarray
    c: np.ndarray
    d: float
    name: str = ""
    tag: dict[str, Any] = field(default_factory=dict)

    def value(self, x: np.ndarray) -> np.ndarray:
        """``c · f(x) + d`` for a batch of inputs (positive means violated)."""
        return self.network(np.atleast_2d(x)) @ self.c + self.d
