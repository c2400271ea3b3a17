"""Trivial objectives for the loop's tests (importable by a `flywheel autoresearch --objective` subprocess)."""

from __future__ import annotations

from typing import Any


def quadratic(params: dict[str, Any]) -> float:
    """Peak 10 at x = 0.3: a smooth, noise-free reward."""
    return 10.0 - 100.0 * (float(params["x"]) - 0.3) ** 2
