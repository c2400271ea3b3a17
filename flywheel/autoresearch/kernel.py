"""The ARD Matérn-5/2 kernel and the gradients the GP and the acquisition need.

``k(x, x') = s² (1 + √5 r + 5/3 r²) exp(-√5 r)`` with ``r² = Σ_i (x_i - x'_i)² / ℓ_i²``: one length-scale
``ℓ_i`` per cube dimension (automatic relevance determination) and a signal variance ``s²``.

Everything works on the scaled points ``A = X / ℓ`` so no ``(n, n, d)`` tensor is ever built.

Example:
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.5, 0.0]])
    >>> K = matern52(X, X, lengthscales=np.array([0.5, 1.0]), variance=2.0)
    >>> round(float(K[0, 0]), 6), round(float(K[0, 1]), 4)
    (2.0, 1.048)
"""

from __future__ import annotations

import numpy as np

SQRT5 = np.sqrt(5.0)


def scaled_sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances between the rows of already-scaled ``a`` (m, d) and ``b`` (n, d), clipped at 0."""
    r2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(r2, 0.0)


def matern52_from_r2(r2: np.ndarray, variance: float) -> np.ndarray:
    """``k`` as a function of the squared scaled distance."""
    r = np.sqrt(r2)
    return variance * (1.0 + SQRT5 * r + (5.0 / 3.0) * r2) * np.exp(-SQRT5 * r)


def matern52_dr2(r2: np.ndarray, variance: float) -> np.ndarray:
    """``∂k/∂(r²) = -5/6 s² (1 + √5 r) exp(-√5 r)`` (finite at ``r = 0``)."""
    r = np.sqrt(r2)
    return -(5.0 / 6.0) * variance * (1.0 + SQRT5 * r) * np.exp(-SQRT5 * r)


def matern52_and_dr2(r2: np.ndarray, variance: float) -> tuple[np.ndarray, np.ndarray]:
    """``k`` and ``∂k/∂(r²)`` together (one square root and one exponential for both)."""
    r = np.sqrt(r2)
    e = np.exp(-SQRT5 * r)
    e *= variance
    t = 1.0 + SQRT5 * r
    return (t + (5.0 / 3.0) * r2) * e, (-(5.0 / 6.0)) * t * e


def matern52(x1: np.ndarray, x2: np.ndarray, *, lengthscales: np.ndarray, variance: float) -> np.ndarray:
    """The kernel matrix ``K[i, j] = k(x1[i], x2[j])``.

    Example:
        >>> float(matern52(np.zeros((1, 3)), np.zeros((1, 3)), lengthscales=np.ones(3), variance=1.5)[0, 0])
        1.5
    """
    return matern52_from_r2(scaled_sqdist(x1 / lengthscales, x2 / lengthscales), variance)


def grad_log_lengthscales(x: np.ndarray, lengthscales: np.ndarray, dk_dr2: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``Σ_jk W_jk ∂K_jk/∂log ℓ_i`` for every dimension ``i`` (the trace the marginal likelihood needs).

    ``∂K_jk/∂log ℓ_i = -2 ∂k/∂r² · (x_ji - x_ki)² / ℓ_i²``; with ``M = W ∘ ∂k/∂r²`` (symmetric) the sum over
    pairs is ``Σ_jk M_jk (a_j - a_k)² = 2 Σ_j a_j² Σ_k M_jk - 2 aᵀ M a`` per column ``a`` of ``X / ℓ``.

    Args:
        x: the training inputs (n, d).
        lengthscales: ℓ (d,).
        dk_dr2: ``matern52_dr2`` of the training pairs (n, n).
        w: any symmetric (n, n) weight, e.g. ``ααᵀ - K⁻¹``.

    Example:
        >>> x = np.array([[0.0], [1.0]]); ls = np.array([1.0])
        >>> g = grad_log_lengthscales(x, ls, matern52_dr2(scaled_sqdist(x, x), 1.0), np.ones((2, 2)))
        >>> bool(g[0] > 0)  # longer length-scale -> larger off-diagonal covariance
        True
    """
    a = x / lengthscales
    m = w * dk_dr2
    return -2.0 * (2.0 * (a * a).T @ m.sum(1) - 2.0 * (a * (m @ a)).sum(0))


def grad_x(xq: np.ndarray, x: np.ndarray, lengthscales: np.ndarray, variance: float) -> tuple[np.ndarray, np.ndarray]:
    """The cross-kernel ``k(xq, x)`` (m, n) and its gradient w.r.t. the query points (m, n, d).

    Example:
        >>> k, dk = grad_x(np.array([[0.2]]), np.array([[0.0]]), np.array([1.0]), 1.0)
        >>> bool(dk[0, 0, 0] < 0)  # moving away from the training point lowers the covariance
        True
    """
    inv2 = 1.0 / (lengthscales * lengthscales)
    r2 = scaled_sqdist(xq / lengthscales, x / lengthscales)
    k = matern52_from_r2(r2, variance)
    d = matern52_dr2(r2, variance)
    diff = xq[:, None, :] - x[None, :, :]
    return k, (2.0 * d)[:, :, None] * diff * inv2
