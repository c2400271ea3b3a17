"""The engine end to end: proofs, planted violations (replayed in onnxruntime), horizon, robustness, Marabou."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flywheel.safety.verify.engine import verify, verify_query
from flywheel.safety.verify.examples import random_mlp, random_mlp_onnx, to_onnx
from flywheel.safety.verify.marabou import solve
from flywheel.safety.verify.network import load_network
from flywheel.safety.verify.replay import replay
from flywheel.safety.verify.spec import parse_spec, queries
from flywheel.training.onnx_export import onnx_policy


def planted(spot: list[float], height: float) -> torch.nn.Module:
    """A small MLP (0.1 × a random one) plus a bump of ``height`` where ‖x - spot‖₁ < 0.05: one ReLU chain.

    Hidden layer 1 holds the body's units and ``|x - spot|`` as ``relu(x - spot), relu(spot - x)``; layer 2
    the body's units and ``relu(1 - 20‖x - spot‖₁)``; the output adds them.
    """
    body = random_mlp([3, 12, 12, 1], seed=5)
    s = torch.tensor(spot)
    l1, l2, l3 = torch.nn.Linear(3, 18), torch.nn.Linear(18, 13), torch.nn.Linear(13, 1)
    with torch.no_grad():
        for layer in (l1, l2, l3):
            layer.weight.zero_()
            layer.bias.zero_()
        l1.weight[:12], l1.bias[:12] = body[0].weight, body[0].bias
        l1.weight[12:15], l1.bias[12:15] = torch.eye(3), -s
        l1.weight[15:18], l1.bias[15:18] = -torch.eye(3), s
        l2.weight[:12, :12], l2.bias[:12] = body[2].weight, body[2].bias
        l2.weight[12, 12:18], l2.bias[12] = -20.0, 1.0
        l3.weight[0, :12], l3.bias[0] = 0.1 * body[4].weight[0], 0.1 * body[4].bias[0]
        l3.weight[0, 12] = height
    return torch.nn.Sequential(l1, torch.nn.ReLU(), l2, torch.nn.ReLU(), l3).eval()


def output_spec(limit: float, dims: int = 3, actions: int = 1) -> object:
    return parse_spec({"properties": [{"name": "limits", "kind": "output_bounds",
                                       "box": {"low": [-1] * dims, "high": [1] * dims},
                                       "actions": {"low": [-limit] * actions, "high": [limit] * actions}}]})


def test_planted_violations_are_found_and_reproduce(tmp_path: Path) -> None:
    for seed, spot in enumerate([[0.5, -0.3, 0.7], [0.05, 0.9, -0.95]]):
        path = to_onnx(planted(spot, 1.0), 3, tmp_path / f"planted{seed}.onnx")
        (cert,) = verify(path, output_spec(0.5), time_limit_per_query=20, seed=seed)
        assert cert.result == "refuted", seed
        ce = next(q for q in cert.queries if q.result == "refuted").counterexample
        assert ce is not None and ce["measured"] > 0.5
        x = np.asarray(ce["input"], np.float32)
        assert np.abs(x - np.asarray(spot)).sum() < 0.05  # inside the planted region
        assert float(onnx_policy(path)(x)[0]) > 0.5  # reproduces in onnxruntime


def test_safe_bounds_are_proved(tmp_path: Path) -> None:
    # the body plus a bump of 0.3 stays below (body's sampled range) + 0.3 + margin
    path = to_onnx(planted([0.0, 0.0, 0.0], 0.3), 3, tmp_path / "safe.onnx")
    body = 0.1 * np.abs(random_mlp([3, 12, 12, 1], seed=5)(torch.rand(100_000, 3) * 2 - 1).detach().numpy()).max()
    (cert,) = verify(path, output_spec(float(body) + 0.3 + 0.05), time_limit_per_query=20)
    assert cert.result == "proved", cert.queries
    assert all(q.bound is not None and q.bound <= 0 for q in cert.queries)
    clipped = random_mlp_onnx(tmp_path / "c.onnx", [3, 16, 1], seed=0, clip=([-0.2], [0.2]))
    (cert,) = verify(clipped, output_spec(0.2001), time_limit_per_query=10)
    assert cert.result == "proved"


def p_controller(gain: float) -> torch.nn.Module:
    """obs = [q, target] → a = gain · (target - q), through a ReLU layer (exact: t = relu(t) - relu(-t))."""
    first, second = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))
        first.bias.zero_()
        second.weight.copy_(torch.tensor([[gain, -gain]]))
        second.bias.zero_()
    return torch.nn.Sequential(first, torch.nn.ReLU(), second).eval()


def horizon_spec(limit: float, steps: int = 10) -> object:
    return parse_spec({"properties": [{
        "name": "joint", "kind": "horizon", "steps": steps, "dt": 0.1,
        "start": {"low": [-0.4], "high": [0.4]}, "joint_limits": {"low": [-limit], "high": [limit]},
        "observation": {"state_matrix": [[1.0], [0.0]], "offset": [0.0, 0.0]},
        "action_clip": {"low": [-2.0], "high": [2.0]}}]})


def test_horizon_safety_proved_and_refuted(tmp_path: Path) -> None:
    good = to_onnx(p_controller(5.0), 2, tmp_path / "good.onnx")  # q → 0 monotonically: stays in [-0.4, 0.4]
    (cert,) = verify(good, horizon_spec(0.41), time_limit_per_query=20)
    assert cert.result == "proved", [q for q in cert.queries if q.result != "proved"]
    bad = to_onnx(p_controller(-5.0), 2, tmp_path / "bad.onnx")  # pushes away from 0: leaves ±0.5
    (cert,) = verify(bad, horizon_spec(0.5), time_limit_per_query=20)
    assert cert.result == "refuted"
    ce = next(q for q in cert.queries if q.result == "refuted").counterexample
    assert abs(ce["measured"]) > 0.5 and len(ce["detail"]["trajectory"]) == 11


def test_robustness_points_and_box(tmp_path: Path) -> None:
    path = random_mlp_onnx(tmp_path / "r.onnx", [2, 8, 8, 2], seed=4, activation="tanh")
    net = load_network(path)
    spec = {"properties": [
        {"name": "near", "kind": "robustness", "epsilon": 0.001, "delta": 0.05, "points": [[0.1, 0.2]]},
        {"name": "box", "kind": "robustness", "epsilon": 0.001, "delta": 0.1,
         "box": {"low": [0, 0], "high": [0.2, 0.2]}},
        {"name": "too-strict", "kind": "robustness", "epsilon": 0.5, "delta": 0.001, "points": [[0.0, 0.0]]}]}
    certs = verify(path, parse_spec(spec), time_limit_per_query=10)
    assert [c.result for c in certs] == ["proved", "proved", "refuted"]
    ce = next(q for q in certs[2].queries if q.result == "refuted").counterexample
    moved = np.asarray(ce["detail"]["perturbed"])
    assert np.abs(moved).max() <= 0.5 + 1e-9
    assert net is not None


def test_marabou_proves_and_refutes_with_a_replayed_counterexample(tmp_path: Path) -> None:
    path = random_mlp_onnx(tmp_path / "m.onnx", [2, 6, 1], seed=0)
    net = load_network(path)
    top = float(net(np.random.default_rng(0).uniform(-1, 1, (20000, 2))).max())
    spec = output_spec(top * 10, dims=2)
    (query,) = [q for q in queries(spec.properties[0], 0, net) if q.tag["side"] == "high"]
    assert solve(query, time_limit=30).status == "unsat"
    violated = type(query)(net, query.lo, query.hi, query.c, -0.5 * top, "half", dict(query.tag, limit=0.5 * top))
    answer = solve(violated, time_limit=30)
    assert answer.status == "sat"
    assert replay(onnx_policy(path), spec.properties[0], violated, answer.counterexample).reproduced


def test_spurious_counterexamples_are_not_refutations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = random_mlp_onnx(tmp_path / "s.onnx", [2, 6, 1], seed=0, clip=([-0.3], [0.3]))
    net = load_network(path)
    spec = output_spec(0.31, dims=2)
    query = queries(spec.properties[0], 0, net)[0]
    from flywheel.safety.verify import bab

    def lying(q: object, **kw: object) -> bab.BabResult:  # a solver claiming a violation that is not one
        return bab.BabResult("violated", 1.0, 1.0, counterexample=np.zeros(2))

    monkeypatch.setattr(bab, "branch_and_bound", lying)
    record = verify_query(query, spec.properties[0], onnx_policy(path), time_limit=5, use_marabou=False)
    assert record.result == "unknown" and record.spurious and record.counterexample is None


def test_time_limit_gives_an_honest_unknown(tmp_path: Path) -> None:
    path = random_mlp_onnx(tmp_path / "u.onnx", [16, 64, 64, 64, 4], seed=0)
    net = load_network(path)
    top = float(np.abs(net(np.random.default_rng(0).uniform(-1, 1, (20000, 16)))).max())
    spec = output_spec(1.5 * top, dims=16, actions=4)
    query = queries(spec.properties[0], 0, net)[0]
    record = verify_query(query, spec.properties[0], onnx_policy(path), time_limit=2, use_marabou=False)
    assert record.result == "unknown" and record.seconds < 6 and "time limit" in record.note
