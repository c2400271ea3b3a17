"""Matérn-5/2 ARD kernel: values and gradients against finite differences."""

from __future__ import annotations

import numpy as np

from flywheel.autoresearch.kernel import grad_log_lengthscales, grad_x, matern52, matern52_and_dr2, scaled_sqdist


def test_known_values_and_symmetry() -> None:
    x = np.array([[0.0, 0.0], [0.3, 0.4], [1.0, 1.0]])
    k = matern52(x, x, lengthscales=np.array([1.0, 1.0]), variance=2.0)
    r = 0.5
    expected = 2.0 * (1 + np.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-np.sqrt(5) * r)
    assert np.isclose(k[0, 1], expected)
    assert np.allclose(np.diag(k), 2.0) and np.allclose(k, k.T)
    assert np.linalg.eigvalsh(k).min() > 0


def test_ard_ignores_a_dimension_with_a_long_length_scale() -> None:
    a, b = np.array([[0.2, 0.0]]), np.array([[0.2, 1.0]])
    assert matern52(a, b, lengthscales=np.array([0.1, 1e6]), variance=1.0)[0, 0] > 0.999
    assert matern52(a, b, lengthscales=np.array([1e6, 0.1]), variance=1.0)[0, 0] < 1e-3


def test_length_scale_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x, ls = rng.random((9, 3)), np.array([0.3, 0.7, 1.5])
    w = rng.standard_normal((9, 9))
    w = w + w.T
    _, dk = matern52_and_dr2(scaled_sqdist(x / ls, x / ls), 1.3)
    g = grad_log_lengthscales(x, ls, dk, w)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-6
        plus = (w * matern52(x, x, lengthscales=ls * np.exp(e), variance=1.3)).sum()
        minus = (w * matern52(x, x, lengthscales=ls * np.exp(-e), variance=1.3)).sum()
        assert np.isclose(g[i], (plus - minus) / 2e-6, rtol=1e-5, atol=1e-7)


def test_input_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x, xq, ls = rng.random((7, 2)), rng.random((3, 2)), np.array([0.4, 0.9])
    _, dk = grad_x(xq, x, ls, 0.8)
    for i in range(2):
        e = np.zeros(2)
        e[i] = 1e-6
        num = (matern52(xq + e, x, lengthscales=ls, variance=0.8) - matern52(xq - e, x, lengthscales=ls,
                                                                              variance=0.8)) / 2e-6
        assert np.allclose(dk[:, :, i], num, atol=1e-6)
