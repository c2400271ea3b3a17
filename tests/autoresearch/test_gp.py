"""GP regressor: fits a known function, σ shrinks at observed points, the noise term is fitted, gradients."""

from __future__ import annotations

import numpy as np

from flywheel.autoresearch.gp import GPRegressor, neg_log_posterior


def f(x: np.ndarray) -> np.ndarray:
    return np.sin(5 * x[:, 0]) + 0.5 * np.cos(3 * x[:, 1])


def test_fits_a_known_function() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 2))
    gp = GPRegressor(seed=0).fit(x, 10.0 + 3.0 * f(x))
    xt = rng.random((200, 2))
    mu, sd = gp.predict(xt)
    err = np.abs(mu - (10.0 + 3.0 * f(xt)))
    assert np.median(err) < 0.05 and err.max() < 0.6
    assert np.mean(err < 3 * sd + 1e-3) > 0.9  # calibrated: most errors inside 3σ


def test_sigma_shrinks_at_observed_points() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((15, 2))
    gp = GPRegressor(seed=0).fit(x, f(x))
    _, sd_seen = gp.predict(x)
    _, sd_far = gp.predict(np.array([[1.0, 1.0], [0.0, 0.0]]) + 0.0)
    _, sd_mid = gp.predict(rng.random((50, 2)))
    assert sd_seen.max() < 0.05 * sd_mid.max()
    assert sd_seen.max() < sd_far.min()


def test_noise_term_is_fitted_on_noisy_data_and_stays_small_on_clean_data() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((60, 2))
    clean = GPRegressor(seed=0).fit(x, f(x))
    noisy = GPRegressor(seed=0).fit(x, f(x) + 0.3 * rng.standard_normal(60))
    assert clean.noise_std < 0.02
    assert 0.15 < noisy.noise_std < 0.5
    mu, _ = noisy.predict(x)  # it smooths rather than interpolating the noise
    assert np.sqrt(np.mean((mu - f(x)) ** 2)) < 0.2


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.random((12, 3)), rng.standard_normal(12)
    theta = np.array([-1.0, -0.5, 0.3, 0.2, np.log(1e-2)])
    _, g = neg_log_posterior(theta, x, y)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = 1e-6
        num = (neg_log_posterior(theta + e, x, y)[0] - neg_log_posterior(theta - e, x, y)[0]) / 2e-6
        assert np.isclose(g[i], num, rtol=1e-4, atol=1e-5)


def test_warm_start_finds_the_same_optimum_faster_and_output_scale_does_not_matter() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((30, 2))
    cold = GPRegressor(seed=0).fit(x, f(x))
    warm = GPRegressor(seed=0).fit(x, f(x), warm_start=cold.hyper, n_restarts=1)
    assert np.allclose(warm.hyper.lengthscales, cold.hyper.lengthscales, rtol=0.05)
    scaled = GPRegressor(seed=0).fit(x, 1000.0 * f(x) - 5.0)
    assert np.allclose(scaled.hyper.lengthscales, cold.hyper.lengthscales, rtol=0.05)
    xt = rng.random((5, 2))
    assert np.allclose(scaled.predict(xt)[0], 1000.0 * cold.predict(xt)[0] - 5.0, rtol=1e-3, atol=1e-2)


def test_a_single_and_a_constant_observation_do_not_break_it() -> None:
    gp = GPRegressor(seed=0).fit(np.array([[0.5, 0.5]]), np.array([3.0]))
    mu, sd = gp.predict(np.array([[0.5, 0.5]]))
    assert np.isclose(mu[0], 3.0) and np.isfinite(sd).all()
    gp = GPRegressor(seed=0).fit(np.random.default_rng(0).random((5, 2)), np.full(5, 2.0))
    assert np.allclose(gp.predict(np.array([[0.1, 0.9]]))[0], 2.0)
