"""Soundness of the bound pass: on many seeded random ReLU and tanh networks, bounds contain sampled outputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from flywheel.safety.verify.bab import branch_and_bound
from flywheel.safety.verify.bounds import crown, interval
from flywheel.safety.verify.network import Act, Affine, Network, clip_layers
from flywheel.safety.verify.query import Query


def random_net(rng: np.random.Generator, kind: str, *, clip: bool = False) -> Network:
    sizes = [int(rng.integers(2, 5))] + [int(rng.integers(3, 12)) for _ in range(rng.integers(1, 4))] + [2]
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(Affine(rng.normal(size=(b, a)) / np.sqrt(a) * 1.5, rng.normal(size=b) * 0.5))
        if i < len(sizes) - 2:
            layers.append(Act(kind, b))
    if clip:
        layers += clip_layers(np.array([-0.3, -np.inf]), np.array([0.3, 0.2]))
    return Network(layers)


@pytest.mark.parametrize("kind", ["relu", "tanh"])
def test_bounds_contain_sampled_outputs(kind: str) -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        net = random_net(rng, kind, clip=trial % 3 == 0)
        center = rng.uniform(-1, 1, net.in_dim)
        radius = rng.uniform(0.01, 1.5, net.in_dim)
        lo, hi = center - radius, center + radius
        x = rng.uniform(lo, hi, size=(3000, net.in_dim))
        corners = lo + rng.integers(0, 2, size=(200, net.in_dim)) * (hi - lo)
        y = net(np.vstack([x, corners]))
        low, high = interval(net, lo, hi)
        assert (y <= high + 1e-12).all() and (y >= low - 1e-12).all(), trial
        # a random linear spec too
        c = rng.normal(size=(3, net.out_dim))
        ub = crown(net, torch.tensor(lo)[None], torch.tensor(hi)[None], torch.tensor(c)).upper[0].numpy()
        assert ((y @ c.T) <= ub + 1e-12).all(), trial


def test_sub_boxes_with_inherited_bounds_stay_sound() -> None:
    rng = np.random.default_rng(3)
    for trial in range(20):
        net = random_net(rng, "relu")
        lo, hi = -np.ones(net.in_dim), np.ones(net.in_dim)
        spec = torch.eye(net.out_dim, dtype=torch.float64)
        parent = crown(net, torch.tensor(lo)[None], torch.tensor(hi)[None], spec)
        sub_lo = rng.uniform(-1, 0, size=(8, net.in_dim))
        sub_hi = sub_lo + rng.uniform(0, 1, size=(8, net.in_dim))
        inherited = [(a.expand(8, -1), b.expand(8, -1)) for a, b in parent.pre]
        child = crown(net, torch.tensor(sub_lo), torch.tensor(sub_hi), spec, parent=inherited)
        for k in range(8):
            y = net(rng.uniform(sub_lo[k], sub_hi[k], size=(500, net.in_dim)))
            assert (y <= child.upper[k].numpy() + 1e-12).all(), trial
        assert (child.upper <= parent.upper + 1e-9).all()  # never looser than the parent


def test_bounds_are_tight_on_a_linear_network() -> None:
    net = Network([Affine(np.array([[2.0, -1.0]]), np.array([0.5]))])
    low, high = interval(net, np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    assert low[0] == pytest.approx(-0.5, abs=1e-6) and high[0] == pytest.approx(2.5, abs=1e-6)


def test_branch_and_bound_proves_what_one_pass_cannot() -> None:
    rng = np.random.default_rng(11)
    net = Network([Affine(rng.normal(size=(16, 2)), rng.normal(size=16)), Act("relu", 16),
                   Affine(rng.normal(size=(16, 16)) / 4, rng.normal(size=16)), Act("relu", 16),
                   Affine(rng.normal(size=(1, 16)) / 4, np.zeros(1))])
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 401), np.linspace(-1, 1, 401)), -1).reshape(-1, 2)
    y = net(grid)[:, 0]
    limit = y.max() + 0.05 * (y.max() - y.min())  # a Lipschitz bound shows the grid is within this of the max
    query = Query(net, -np.ones(2), np.ones(2), np.array([1.0]), -limit)
    first = crown(net, torch.tensor(query.lo)[None], torch.tensor(query.hi)[None], torch.tensor([[1.0]]),
                  torch.tensor([-limit]))
    assert float(first.upper[0, 0]) > 0  # one pass cannot
    result = branch_and_bound(query, time_limit=30)
    assert result.status == "proved" and result.boxes > 1 and result.bound <= 0
    below = Query(net, -np.ones(2), np.ones(2), np.array([1.0]), -(y.max() - 0.01))
    found = branch_and_bound(below, time_limit=30)
    assert found.status == "violated" and below.value(found.counterexample[None])[0] > 0
