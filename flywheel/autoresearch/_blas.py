"""Run BLAS single-threaded while the GP works on small matrices.

OpenBLAS threads spin on small matrices and, on a shared machine, make a 60×60 Cholesky 50× slower
(measured: 58 ms → 0.9 ms per marginal-likelihood evaluation on 2 busy cores). Optuna's GPSampler does the same
(``optuna/_gp/thread_limiting.py``). Linux only (it reads ``/proc/self/maps``); elsewhere a no-op.

Example:
    >>> with single_threaded_blas():
    ...     pass
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

_SUFFIXES = ("64_", "_64_", "", "_")


@cache
def _openblas_controls() -> tuple[tuple[ctypes._CFuncPtr, ctypes._CFuncPtr], ...]:
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line})
    except OSError:
        return ()
    out = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    out.append((get, put))
                    break
            else:
                continue
            break
    return tuple(out)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit every loaded OpenBLAS to one thread inside the block, then restore the previous counts."""
    import numpy  # noqa: F401  (make sure numpy's BLAS is loaded before looking)
    import scipy.linalg  # noqa: F401

    controls = _openblas_controls()
    old = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(controls, old, strict=True):
            put(n)
