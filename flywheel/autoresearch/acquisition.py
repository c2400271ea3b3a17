"""Upper confidence bound ``UCB = μ + κ·σ`` and its maximisation over the search space.

The maximiser scores ``n_candidates`` scrambled-Sobol points plus perturbations of the best observed
points (all snapped onto representable configurations), then refines the best few (and the best of each
categorical combination, so a choice is judged at its own best continuous values) with one stacked
L-BFGS-B run over the non-categorical dimensions using the analytic gradient of μ and σ (categoricals stay
fixed, integers are relaxed and snapped afterwards). Everything is vectorised over candidates.

Example:
    >>> import numpy as np
    >>> from flywheel.autoresearch.gp import GPRegressor
    >>> from flywheel.autoresearch.space import SearchSpace
    >>> space = SearchSpace(params={"x": {"type": "float", "low": 0.0, "high": 1.0}})
    >>> X = np.array([[0.1], [0.4], [0.6], [0.9]]); y = -(X[:, 0] - 0.5) ** 2
    >>> gp = GPRegressor(seed=0).fit(X, y)
    >>> p = maximise_ucb(gp, space, kappa=0.0, rng=np.random.default_rng(0))
    >>> bool(abs(p.x[0] - 0.5) < 0.05), len(p.top)
    (True, 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from flywheel.autoresearch._blas import single_threaded_blas
from flywheel.autoresearch.gp import GPRegressor
from flywheel.autoresearch.kernel import grad_x
from flywheel.autoresearch.space import SearchSpace


@dataclass(frozen=True)
class Candidate:
    """One scored configuration (original units), as logged before each trial."""

    params: dict[str, Any]
    mu: float
    sigma: float
    ucb: float

    def __str__(self) -> str:
        return f"ucb={self.ucb:.4g} mu={self.mu:.4g} sigma={self.sigma:.4g} {self.params}"


@dataclass(frozen=True)
class Proposal:
    """The result of maximising UCB.

    Attributes:
        x: the best cube point (snapped).
        ranked: every scored distinct point, best first (for choosing the next one when ``x`` is taken).
        top: the best five as ``Candidate`` (for the log).
        max_sigma: the largest posterior σ over the candidates, original units (convergence test).
    """

    x: np.ndarray
    ranked: np.ndarray
    top: list[Candidate] = field(default_factory=list)
    max_sigma: float = float("inf")


def ucb(gp: GPRegressor, xq: np.ndarray, kappa: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UCB, μ and σ at ``xq`` (m, d), all in the GP's standardised units."""
    mu, sd = gp.predict_std(xq)
    return mu + kappa * sd, mu, sd


def ucb_and_grad(gp: GPRegressor, xq: np.ndarray, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """Standardised UCB at ``xq`` (m, d) and its gradient (m, d).

    Example:
        >>> from flywheel.autoresearch.gp import GPRegressor
        >>> X = np.array([[0.2], [0.8]]); gp = GPRegressor(seed=0).fit(X, np.array([0.0, 1.0]))
        >>> v, g = ucb_and_grad(gp, np.array([[0.5]]), 1.0)
        >>> v2, _ = ucb_and_grad(gp, np.array([[0.5 + 1e-6]]), 1.0)
        >>> bool(abs((v2[0] - v[0]) / 1e-6 - g[0, 0]) < 1e-3)
        True
    """
    h = gp.hyper
    assert h is not None  # callers pass a fitted GP
    k, dk = grad_x(xq, gp.x, h.lengthscales, h.variance)
    mu = k @ gp._alpha
    v = k @ gp._kinv
    var = np.maximum(h.variance - (v * k).sum(1), 1e-18)
    sd = np.sqrt(var)
    dmu = np.einsum("mnd,n->md", dk, gp._alpha)
    dvar = -2.0 * np.einsum("mnd,mn->md", dk, v)
    return mu + kappa * sd, dmu + kappa * dvar / (2.0 * sd)[:, None]


def _candidates(gp: GPRegressor, space: SearchSpace, rng: np.random.Generator, n: int) -> np.ndarray:
    sobol = qmc.Sobol(space.dim, scramble=True, seed=rng).random(n)
    parts = [sobol]
    if len(gp.x):
        order = np.argsort(-gp._ys)[:3]
        cont = space.kinds != 2
        for i in order:
            m = max(n // 8, 16)
            centre = np.repeat(gp.x[i][None, :], m, axis=0)
            scale = rng.choice([0.01, 0.03, 0.1, 0.3], size=(m, 1))
            centre[:, cont] += scale * rng.standard_normal((m, int(cont.sum())))
            for sl in space.groups:  # sometimes switch a categorical to a random choice
                flip = rng.random(m) < 0.2
                pick = rng.integers(0, sl.stop - sl.start, size=m)
                centre[flip, sl] = 0.0
                centre[np.flatnonzero(flip), sl.start + pick[flip]] = 1.0
            parts.append(centre)
    return space.snap(np.vstack(parts))


def _refine(gp: GPRegressor, space: SearchSpace, starts: np.ndarray, kappa: float) -> np.ndarray:
    free = space.kinds != 2
    if not free.any():
        return starts
    m, nf = len(starts), int(free.sum())
    base = starts.copy()

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        xq = base.copy()
        xq[:, free] = z.reshape(m, nf)
        val, grad = ucb_and_grad(gp, xq, kappa)
        return -float(val.sum()), -grad[:, free].ravel()

    res = minimize(fun, starts[:, free].ravel(), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, 1.0)] * (m * nf), options={"maxiter": 100})
    out = base.copy()
    out[:, free] = res.x.reshape(m, nf)
    return space.snap(out)


def maximise_ucb(gp: GPRegressor, space: SearchSpace, *, kappa: float, rng: np.random.Generator,
                 n_candidates: int = 1024, n_refine: int = 5, top_k: int = 5) -> Proposal:
    """The configuration with the largest UCB (see the module docstring for the method).

    Args:
        gp: a fitted GP on the space's cube.
        space: the search space (for snapping and decoding).
        kappa: the exploration weight κ.
        rng: the random generator (Sobol scrambling, perturbations).
        n_candidates: Sobol points scored (a power of two).
        n_refine: best distinct candidates refined by L-BFGS-B.
        top_k: how many candidates to report.
    """
    with single_threaded_blas():
        return _maximise(gp, space, kappa, rng, n_candidates, n_refine, top_k)


def _maximise(gp: GPRegressor, space: SearchSpace, kappa: float, rng: np.random.Generator, n_candidates: int,
              n_refine: int, top_k: int) -> Proposal:
    cand = _candidates(gp, space, rng, n_candidates)
    score, _, sd = ucb(gp, cand, kappa)
    max_sigma = float(sd.max()) * gp.y_std
    order = np.argsort(-score)
    starts = list(order[:n_refine])
    if space.groups:  # also refine the best candidate of each categorical combination (up to 8 more)
        cat = space.kinds == 2
        combos: dict[bytes, int] = {}
        for i in order:
            combos.setdefault(cand[i, cat].tobytes(), int(i))
        starts += [i for i in list(combos.values())[:8] if i not in starts]
    refined = _refine(gp, space, cand[starts], kappa)
    allx = np.vstack([refined, cand])
    _, uniq = np.unique(np.round(allx, 12), axis=0, return_index=True)
    allx = allx[uniq]
    score, mu, sd = ucb(gp, allx, kappa)
    order = np.argsort(-score, kind="stable")
    ranked = allx[order]
    top = [
        Candidate(params=space.decode(ranked[i]), mu=float(mu[j] * gp.y_std + gp.y_mean),
                  sigma=float(sd[j] * gp.y_std), ucb=float((mu[j] + kappa * sd[j]) * gp.y_std + gp.y_mean))
        for i, j in enumerate(order[:top_k])
    ]
    return Proposal(x=ranked[0], ranked=ranked, top=top, max_sigma=max_sigma)
