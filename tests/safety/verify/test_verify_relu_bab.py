"""ReLU-splitting branch and bound: sound verdicts on random networks, proofs one pass cannot give, planted
violations found (and replayed) on a wide input where the engine picks ReLU splitting."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from flywheel.safety.verify.alpha import optimise
from flywheel.safety.verify.bounds import TorchNet, crown
from flywheel.safety.verify.engine import INPUT_SPLIT_MAX_DIM, verify
from flywheel.safety.verify.examples import random_mlp, to_onnx
from flywheel.safety.verify.network import Act, Affine, Network
from flywheel.safety.verify.query import Query
from flywheel.safety.verify.relu_bab import relu_branch_and_bound
from flywheel.training.onnx_export import onnx_policy

from .test_verify_engine import output_spec


def wide_net(rng: np.random.Generator, n_in: int, hidden: list[int]) -> Network:
    layers: list = []
    sizes = [n_in, *hidden, 1]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(Affine(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3))
        if i < len(sizes) - 2:
            layers.append(Act("relu", b))
    return Network(layers)


def test_verdicts_agree_with_sampling_on_random_networks() -> None:
    rng = np.random.default_rng(2)
    verdicts = set()
    for trial in range(12):
        net = wide_net(rng, int(rng.integers(5, 9)), [int(rng.integers(6, 16)) for _ in range(2)])
        x = rng.uniform(-1, 1, size=(20_000, net.in_dim))
        y = net(x)[:, 0]
        limit = y.max() + (0.3 if trial % 2 else -0.02) * (y.max() - y.min())
        query = Query(net, -np.ones(net.in_dim), np.ones(net.in_dim), np.array([1.0]), -limit)
        result = relu_branch_and_bound(query, time_limit=1.5, seed=trial)
        verdicts.add(result.status)
        if result.status == "proved":
            assert (y - limit <= 0).all() and result.bound <= 0, trial
        if result.status == "violated":
            assert query.value(result.counterexample[None])[0] > 0, trial
        if trial % 2 == 0:  # below the sampled maximum: never proved
            assert result.status != "proved", trial
    assert verdicts >= {"proved", "violated"}


def test_relu_splitting_proves_what_one_pass_cannot() -> None:
    rng = np.random.default_rng(11)
    net = Network([Affine(rng.normal(size=(16, 2)), rng.normal(size=16)), Act("relu", 16),
                   Affine(rng.normal(size=(16, 16)) / 4, rng.normal(size=16)), Act("relu", 16),
                   Affine(rng.normal(size=(1, 16)) / 4, np.zeros(1))])
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 401), np.linspace(-1, 1, 401)), -1).reshape(-1, 2)
    y = net(grid)[:, 0]
    limit = y.max() + 0.05 * (y.max() - y.min())
    query = Query(net, -np.ones(2), np.ones(2), np.array([1.0]), -limit)
    tn, lo, hi = TorchNet(net), torch.tensor(query.lo)[None], torch.tensor(query.hi)[None]
    first = crown(tn, lo, hi, torch.tensor([[1.0]]), torch.tensor([-limit]))
    alpha = optimise(tn, lo, hi, torch.tensor([1.0]), -limit, first.pre, steps=50)
    assert float(alpha.upper[0]) > 0  # neither one pass nor α-CROWN can
    result = relu_branch_and_bound(query, time_limit=30)
    assert result.status == "proved" and result.boxes > 1 and result.bound <= 0
    assert result.method == "relu-branch-and-bound"


def planted_wide(spot: np.ndarray, height: float) -> torch.nn.Module:
    """A small 8-input MLP (0.1 × a random one) plus ``height`` · relu(1 - 10‖x - spot‖₁)."""
    n = spot.size
    body = random_mlp([n, 12, 12, 1], seed=3)
    s = torch.tensor(spot, dtype=torch.float32)
    l1, l2, l3 = torch.nn.Linear(n, 12 + 2 * n), torch.nn.Linear(12 + 2 * n, 13), torch.nn.Linear(13, 1)
    with torch.no_grad():
        for layer in (l1, l2, l3):
            layer.weight.zero_()
            layer.bias.zero_()
        l1.weight[:12], l1.bias[:12] = body[0].weight, body[0].bias
        l1.weight[12:12 + n], l1.bias[12:12 + n] = torch.eye(n), -s
        l1.weight[12 + n:], l1.bias[12 + n:] = -torch.eye(n), s
        l2.weight[:12, :12], l2.bias[:12] = body[2].weight, body[2].bias
        l2.weight[12, 12:], l2.bias[12] = -10.0, 1.0
        l3.weight[0, :12], l3.bias[0] = 0.1 * body[4].weight[0], 0.1 * body[4].bias[0]
        l3.weight[0, 12] = height
    return torch.nn.Sequential(l1, torch.nn.ReLU(), l2, torch.nn.ReLU(), l3).eval()


def test_planted_violation_on_a_wide_input_is_found_and_reproduces(tmp_path: Path) -> None:
    spot = np.array([0.3, -0.5, 0.1, 0.6, -0.2, 0.4, -0.7, 0.05])
    assert spot.size > INPUT_SPLIT_MAX_DIM  # the engine takes the ReLU-splitting path
    path = to_onnx(planted_wide(spot, 1.0), spot.size, tmp_path / "planted8.onnx")
    (cert,) = verify(path, output_spec(0.5, dims=spot.size), time_limit_per_query=20)
    assert cert.result == "refuted"
    ce = next(q for q in cert.queries if q.result == "refuted").counterexample
    x = np.asarray(ce["input"], np.float32)
    assert np.abs(x - spot).sum() < 0.1  # inside the planted region
    assert float(onnx_policy(path)(x[None])[0, 0]) > 0.5  # reproduces in onnxruntime
