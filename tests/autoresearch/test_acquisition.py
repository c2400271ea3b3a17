"""Acquisition: UCB gradient, the maximiser finds a known maximum, top-5 candidates for the log."""

from __future__ import annotations

import numpy as np

from flywheel.autoresearch.acquisition import maximise_ucb, ucb, ucb_and_grad
from flywheel.autoresearch.gp import GPRegressor
from flywheel.autoresearch.space import SearchSpace


def _gp(x: np.ndarray, y: np.ndarray) -> GPRegressor:
    return GPRegressor(seed=0).fit(x, y)


def test_ucb_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((10, 3))
    gp = _gp(x, np.sin(4 * x).sum(1))
    xq = rng.random((4, 3))
    _, g = ucb_and_grad(gp, xq, 2.0)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-6
        num = (ucb(gp, xq + e, 2.0)[0] - ucb(gp, xq - e, 2.0)[0]) / 2e-6
        assert np.allclose(g[:, i], num, atol=1e-4)


def test_finds_the_known_maximiser_of_the_posterior_mean() -> None:
    space = SearchSpace(params={"a": {"type": "float", "low": 0.0, "high": 1.0},
                                "b": {"type": "float", "low": 0.0, "high": 1.0}})
    rng = np.random.default_rng(1)
    x = rng.random((80, 2))
    gp = _gp(x, -((x[:, 0] - 0.3) ** 2) - (x[:, 1] - 0.7) ** 2)
    p = maximise_ucb(gp, space, kappa=0.0, rng=np.random.default_rng(0))
    assert np.allclose(p.x, [0.3, 0.7], atol=0.02)
    best_seen = gp.predict(x)[0].max()  # refinement beats every candidate, not only the observed ones
    assert p.top[0].mu >= best_seen


def test_large_kappa_goes_where_sigma_is_large() -> None:
    space = SearchSpace(params={"a": {"type": "float", "low": 0.0, "high": 1.0}})
    x = np.array([[0.0], [0.05], [0.1], [0.15]])
    gp = _gp(x, np.array([0.0, 0.1, 0.2, 0.3]))
    assert maximise_ucb(gp, space, kappa=0.0, rng=np.random.default_rng(0)).x[0] < 0.6
    far = maximise_ucb(gp, space, kappa=50.0, rng=np.random.default_rng(0))
    assert far.x[0] > 0.9
    assert far.max_sigma > 0


def test_mixed_space_returns_representable_points_and_top_five_sorted() -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 9},
                                "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                                "net": {"type": "categorical", "choices": ["s", "m", "l"]}})
    rng = np.random.default_rng(2)

    def reward(p: dict) -> float:
        return -((p["n"] - 6) ** 2) - 3 * (np.log10(p["lr"]) + 2.5) ** 2 + 2.0 * (p["net"] == "m")

    xs = space.sample(rng, 60)
    gp = _gp(xs, np.array([reward(space.decode(x)) for x in xs]))
    p = maximise_ucb(gp, space, kappa=0.0, rng=np.random.default_rng(0))
    assert np.allclose(space.snap(p.x), p.x)
    best = space.decode(p.x)
    assert best["n"] == 6 and best["net"] == "m" and abs(np.log10(best["lr"]) + 2.5) < 0.25
    assert len(p.top) == 5 and [c.ucb for c in p.top] == sorted((c.ucb for c in p.top), reverse=True)
    assert p.top[0].params == best


def test_maximiser_matches_a_brute_force_grid_of_the_ucb_surface() -> None:
    space = SearchSpace(params={"a": {"type": "float", "low": 0.0, "high": 1.0},
                                "b": {"type": "float", "low": 0.0, "high": 1.0}})
    rng = np.random.default_rng(5)
    x = rng.random((12, 2))
    gp = _gp(x, np.sin(6 * x[:, 0]) * np.cos(4 * x[:, 1]))
    g = np.linspace(0, 1, 301)
    grid = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    brute = ucb(gp, grid, 2.0)[0].max()
    found = maximise_ucb(gp, space, kappa=2.0, rng=np.random.default_rng(0))
    assert ucb(gp, found.x[None, :], 2.0)[0][0] >= brute - 1e-4
