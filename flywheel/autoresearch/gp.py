"""A Gaussian-process regressor in numpy/scipy: Matérn-5/2 ARD, output normalisation, a fitted noise term.

Hyperparameters ``θ = (log ℓ_1..d, log s², log σ²_noise)`` maximise the log marginal likelihood plus a log
prior (MAP) with L-BFGS-B and analytic gradients, from several starts. The priors, on standardised outputs
and unit-cube inputs:

- length-scales: ``log ℓ ~ N(log 0.5, 1)``, bounded to ``[0.005, 200]``. A prior centred on long length-scales
  (``√2 + ½ log d``, Hvarfner et al. 2024) was tried first: with a few dozen points it declared dimensions of
  Hartmann-6 irrelevant and UCB stalled at regret ~1 (measured); this one reaches ~1e-4;
- signal variance: ``log s² ~ N(0, 1)``, bounded to ``[0.01, 100]``;
- noise variance: ``Exponential(30)`` on ``σ²`` (flat in ``log σ²`` near the floor ``1e-6``): a Gamma(1.1, 30)
  put its mode at σ² ≈ 0.003 and the fit could not resolve the last 0.1% of Hartmann-3 (measured).

``fit(..., warm_start=previous θ)`` starts from the previous optimum (one restart is then usually enough),
which is what makes asking cheap in a long search.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((20, 1)); y = np.sin(6 * X[:, 0])
    >>> gp = GPRegressor(seed=0).fit(X, y)
    >>> mu, sd = gp.predict(np.array([[0.5]]))
    >>> bool(abs(mu[0] - np.sin(3.0)) < 0.05)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, cholesky, lapack, solve_triangular
from scipy.optimize import minimize

from flywheel.autoresearch._blas import single_threaded_blas
from flywheel.autoresearch.kernel import (
    grad_log_lengthscales,
    matern52_and_dr2,
    matern52_from_r2,
    scaled_sqdist,
)

LOG_LS_BOUNDS = (np.log(0.005), np.log(200.0))
LOG_VAR_BOUNDS = (np.log(0.01), np.log(100.0))
NOISE_FLOOR = 1e-6
LOG_NOISE_MAX = np.log(2.0)
_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class Hyper:
    """Fitted GP hyperparameters (in standardised output units).

    Attributes:
        lengthscales: one per cube dimension.
        variance: signal variance ``s²``.
        noise: noise variance ``σ²``.
    """

    lengthscales: np.ndarray
    variance: float
    noise: float

    def to_theta(self) -> np.ndarray:
        """The log-parameter vector L-BFGS-B works on."""
        return np.concatenate([np.log(self.lengthscales), [np.log(self.variance), np.log(self.noise)]])

    @classmethod
    def from_theta(cls, theta: np.ndarray) -> Hyper:
        """The inverse of ``to_theta``."""
        return cls(np.exp(theta[:-2]), float(np.exp(theta[-2])), float(np.exp(theta[-1])))


def prior_mean_log_ls(dim: int) -> float:
    """The centre of the length-scale log-normal prior (``log 0.5``; the same in every dimension)."""
    return float(np.log(0.5))


PRIOR_SD_LOG_LS = 1.0


def log_prior(theta: np.ndarray) -> tuple[float, np.ndarray]:
    """The log prior density of ``θ`` (up to a constant) and its gradient."""
    d = len(theta) - 2
    m = prior_mean_log_ls(d)
    g = np.zeros_like(theta)
    z = (theta[:d] - m) / PRIOR_SD_LOG_LS
    lp = -0.5 * float(z @ z)
    g[:d] = -z / PRIOR_SD_LOG_LS
    lp += -0.5 * float(theta[d] ** 2)
    g[d] = -theta[d]
    noise = np.exp(theta[d + 1])  # Exponential(30) on the variance: flat in log σ² near the floor
    lp += -30.0 * noise
    g[d + 1] = -30.0 * noise
    return lp, g


def neg_log_posterior(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``-(log p(y | X, θ) + log p(θ))`` and its gradient, for standardised ``y``.

    Example:
        >>> rng = np.random.default_rng(1); X = rng.random((8, 2)); y = rng.standard_normal(8)
        >>> t = np.array([-1.0, 0.0, 0.1, -3.0]); f, g = neg_log_posterior(t, X, y)
        >>> e = np.array([0, 1e-6, 0, 0])
        >>> num = (neg_log_posterior(t + e, X, y)[0] - neg_log_posterior(t - e, X, y)[0]) / 2e-6
        >>> bool(abs(num - g[1]) < 1e-4)
        True
    """
    n, d = x.shape
    ls = np.exp(theta[:d])
    var = float(np.exp(theta[d]))
    noise = float(np.exp(theta[d + 1]))
    a = x / ls
    r2 = scaled_sqdist(a, a)
    kf, dkdr2 = matern52_and_dr2(r2, var)
    k = kf.copy()
    k.flat[:: n + 1] += noise + 1e-10
    low, info = lapack.dpotrf(k, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return 1e25, np.zeros_like(theta)
    alpha = lapack.dpotrs(low, y, lower=1)[0]
    lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(low)).sum()) - 0.5 * n * _LOG_2PI
    kinv = lapack.dpotri(low, lower=1)[0]
    kinv = np.tril(kinv) + np.tril(kinv, -1).T
    w = np.outer(alpha, alpha)
    w -= kinv
    g = np.empty_like(theta)
    g[:d] = 0.5 * grad_log_lengthscales(x, ls, dkdr2, w)
    g[d] = 0.5 * float((w * kf).sum())
    g[d + 1] = 0.5 * noise * float(np.trace(w))
    lp, gp = log_prior(theta)
    return -(lml + lp), -(g + gp)


class GPRegressor:
    """A zero-mean GP on standardised outputs (predictions come back in the original units).

    Args:
        n_restarts: starts for a cold fit (the prior centre plus draws from the prior).
        noise_floor: the smallest noise variance (standardised units).
        maxiter: L-BFGS-B iterations per start.
        seed: seeds the restart draws.

    Example:
        >>> X = np.linspace(0, 1, 6)[:, None]; gp = GPRegressor(seed=0).fit(X, 3.0 * X[:, 0])
        >>> mu, sd = gp.predict(X[:1]); bool(sd[0] < 0.05)
        True
    """

    def __init__(self, *, n_restarts: int = 4, noise_floor: float = NOISE_FLOOR, maxiter: int = 200,
                 seed: int | None = None) -> None:
        self.n_restarts = n_restarts
        self.noise_floor = noise_floor
        self.maxiter = maxiter
        self._rng = np.random.default_rng(seed)
        self.hyper: Hyper | None = None
        self.x = np.zeros((0, 0))
        self.y_mean = 0.0
        self.y_std = 1.0

    def _bounds(self, d: int) -> list[tuple[float, float]]:
        return [LOG_LS_BOUNDS] * d + [LOG_VAR_BOUNDS, (np.log(self.noise_floor), LOG_NOISE_MAX)]

    def _starts(self, d: int, warm_start: Hyper | None, n_restarts: int) -> list[np.ndarray]:
        bounds = np.array(self._bounds(d))
        centre = np.concatenate([np.full(d, prior_mean_log_ls(d)), [0.0, np.log(1e-3)]])
        starts = [warm_start.to_theta()] if warm_start is not None and len(warm_start.lengthscales) == d else []
        if not starts or n_restarts > 1:
            starts.append(centre)
        while len(starts) < max(n_restarts, 1):
            t = centre.copy()
            t[:d] += PRIOR_SD_LOG_LS * self._rng.standard_normal(d) * 0.7
            t[d + 1] = self._rng.uniform(np.log(self.noise_floor), np.log(0.1))
            starts.append(t)
        return [np.clip(s, bounds[:, 0], bounds[:, 1]) for s in starts]

    def fit(self, x: np.ndarray, y: np.ndarray, *, warm_start: Hyper | None = None,
            n_restarts: int | None = None) -> GPRegressor:
        """Standardise ``y``, fit the hyperparameters (MAP), factorise.

        Args:
            x: inputs in the unit cube (n, d), n ≥ 1.
            y: outputs (n,).
            warm_start: the previous fit's hyperparameters, tried first.
            n_restarts: starts this time (default: ``self.n_restarts``; with a warm start 1 is often enough).
        """
        with single_threaded_blas():
            return self._fit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), warm_start, n_restarts)

    def _fit(self, x: np.ndarray, y: np.ndarray, warm_start: Hyper | None, n_restarts: int | None) -> GPRegressor:
        self.y_mean = float(y.mean())
        sd = float(y.std())
        self.y_std = sd if sd > 1e-12 else 1.0
        ys = (y - self.y_mean) / self.y_std
        d = x.shape[1]
        best: tuple[float, np.ndarray] | None = None
        for t0 in self._starts(d, warm_start, self.n_restarts if n_restarts is None else n_restarts):
            res = minimize(neg_log_posterior, t0, args=(x, ys), jac=True, method="L-BFGS-B",
                           bounds=self._bounds(d), options={"maxiter": self.maxiter})
            if best is None or res.fun < best[0]:
                best = (float(res.fun), res.x)
        assert best is not None  # at least one start always exists
        return self.set_data(x, y, Hyper.from_theta(best[1]))

    def set_data(self, x: np.ndarray, y: np.ndarray, hyper: Hyper, *, keep_scaling: bool = False) -> GPRegressor:
        """Condition on ``(x, y)`` with fixed hyperparameters (no fitting); used by fits and for fantasies."""
        self.x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if not keep_scaling:
            self.y_mean = float(y.mean())
            sd = float(y.std())
            self.y_std = sd if sd > 1e-12 else 1.0
        self.hyper = hyper
        self._ys = (y - self.y_mean) / self.y_std
        ls = hyper.lengthscales
        a = self.x / ls
        k = matern52_from_r2(scaled_sqdist(a, a), hyper.variance)
        jitter = 1e-10
        for _ in range(6):
            try:
                k2 = k.copy()
                k2[np.diag_indices(len(k))] += hyper.noise + jitter
                low = cholesky(k2, lower=True, check_finite=False)
                break
            except LinAlgError:
                jitter *= 100.0
        else:  # pragma: no cover - a PSD matrix plus 1e2 jitter always factorises
            raise LinAlgError("kernel matrix not positive definite")
        self._low = low
        self._alpha = cho_solve((low, True), self._ys, check_finite=False)
        linv = solve_triangular(low, np.eye(len(k)), lower=True, check_finite=False)
        self._kinv = linv.T @ linv
        return self

    def predict_std(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function in standardised units."""
        h = self.hyper
        if h is None:
            raise RuntimeError("fit the GP first")
        ks = matern52_from_r2(scaled_sqdist(xq / h.lengthscales, self.x / h.lengthscales), h.variance)
        mu = ks @ self._alpha
        var = h.variance - ((ks @ self._kinv) * ks).sum(1)
        return mu, np.sqrt(np.maximum(var, 1e-18))

    def predict(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function in the original units."""
        mu, sd = self.predict_std(np.atleast_2d(xq))
        return mu * self.y_std + self.y_mean, sd * self.y_std

    @property
    def noise_std(self) -> float:
        """The fitted observation noise, as a standard deviation in the original units."""
        return float(np.sqrt(self.hyper.noise) * self.y_std) if self.hyper else float("nan")
