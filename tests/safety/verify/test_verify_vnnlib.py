"""VNN-LIB: every query exports and reads back as the same box property; derived networks export as ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from flywheel.safety.verify.examples import random_mlp_onnx
from flywheel.safety.verify.network import load_network
from flywheel.safety.verify.spec import parse_spec, queries
from flywheel.safety.verify.vnnlib import export_queries, read_vnnlib, to_vnnlib

SPEC = {"properties": [
    {"name": "bounds", "kind": "output_bounds", "box": {"low": [-1, -0.5], "high": [1, 0.25]},
     "actions": {"low": [-0.7, None], "high": [0.7, 0.3]}},
    {"name": "smooth", "kind": "robustness", "epsilon": 0.01, "delta": 0.1, "box": {"low": [0, 0], "high": [1, 1]}},
    {"name": "joint", "kind": "horizon", "steps": 3, "dt": 0.1, "start": {"low": [0], "high": [0.1]},
     "joint_limits": {"low": [-1], "high": [1]}, "observation": {"state_matrix": [[1], [0]], "offset": [0, 0.2]},
     "action_clip": {"low": [-1], "high": [1]}}]}


def test_round_trip_and_derived_networks(tmp_path: Path) -> None:
    model = random_mlp_onnx(tmp_path / "p.onnx", [2, 8, 2], seed=0, activation="tanh")
    net = load_network(model)
    spec = parse_spec(SPEC)
    pairs = [(p.name, q) for i, p in enumerate(spec.properties) for q in queries(p, i, net)]
    assert len(pairs) == 3 + 4 + 6
    for _, query in pairs:
        back = read_vnnlib(to_vnnlib(query))
        np.testing.assert_array_equal(back.lo, query.lo)
        np.testing.assert_array_equal(back.hi, query.hi)
        np.testing.assert_array_equal(back.c, query.c)
        assert back.d == query.d
    written = export_queries(pairs, model, tmp_path / "vnn")
    assert len(written) == len(pairs) and all(p.suffix == ".vnnlib" for p in written)
    for name in ("smooth", "joint"):  # derived networks are written next to their queries and compute the same
        derived = next(q.network for n, q in pairs if n == name)
        session = ort.InferenceSession(str(tmp_path / "vnn" / f"{name}.onnx"))
        x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(1, derived.in_dim)).astype(np.float32)
        np.testing.assert_allclose(session.run(None, {"X": x})[0], derived(x.astype(np.float64)), atol=1e-5)
    assert "; network: " in written[0].read_text() and str(model.resolve()) in written[0].read_text()


def test_general_linear_constraint_round_trips() -> None:
    text = "\n".join(["(declare-const X_0 Real)", "(declare-const Y_0 Real)", "(declare-const Y_1 Real)",
                      "(assert (<= X_0 1.0))", "(assert (>= X_0 -1.0))",
                      "(assert (>= (+ (* 1.0 Y_0) (* -2.0 Y_1)) 0.5))"])
    prop = read_vnnlib(text)
    assert prop.c.tolist() == [1.0, -2.0] and prop.d == -0.5
