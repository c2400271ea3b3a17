"""Horizon safety for 10 control steps of a 64-unit policy, verified on the policy unrolled with its dynamics.

The policy (2 observations [q, target] → 64 → 64 ReLU → 1 action) is fitted (seeded, a few hundred Adam
steps) to a proportional controller ``a = 4·(target - q)``; the dynamics are a position-controlled joint
``q' = q + clip(a, -1, 1)·dt`` at 50 Hz (dt = 0.02, 10 steps = 200 ms); the target is fixed at 0.3; from
any start ``q0 ∈ [-0.5, 0.5]`` the joint must stay within ±0.6 rad. The anchor, measured in the same run, is
Marabou alone on the same unrolled network (the first query, capped at ``--marabou-limit`` s).

Run: ``.venv/bin/python benchmarks/verify_horizon.py [--limit 30] [--marabou-limit 60]``. Prints the
ratio last.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from flywheel.safety.verify.engine import verify
from flywheel.safety.verify.examples import random_mlp, to_onnx
from flywheel.safety.verify.marabou import solve
from flywheel.safety.verify.network import load_network
from flywheel.safety.verify.spec import parse_spec, queries

SPEC = {"properties": [{
    "name": "joint-in-limits-200ms", "kind": "horizon", "steps": 10, "dt": 0.02,
    "start": {"low": [-0.5], "high": [0.5]}, "joint_limits": {"low": [-0.6], "high": [0.6]},
    "observation": {"state_matrix": [[1.0], [0.0]], "offset": [0.0, 0.3]},
    "action_clip": {"low": [-1.0], "high": [1.0]}}]}


def fitted_policy(path: Path) -> Path:
    torch.manual_seed(0)
    model = random_mlp([2, 64, 64, 1], seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        obs = torch.rand(512, 2) * 2 - 1
        target = 4.0 * (obs[:, 1:2] - obs[:, 0:1])
        loss = torch.mean((model(obs) - target) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return to_onnx(model.eval(), 2, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=30.0, help="time limit per query (s)")
    parser.add_argument("--marabou-limit", type=float, default=60.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    path = fitted_policy(Path(tempfile.mkdtemp(prefix="fw-horizon-")) / "policy.onnx")
    spec = parse_spec(SPEC)
    start = time.perf_counter()
    (cert,) = verify(path, spec, time_limit_per_query=args.limit)
    ours = time.perf_counter() - start
    results = [q.result for q in cert.queries]
    methods = sorted({q.method for q in cert.queries})
    print(f"caps: {args.limit:g}s per query (ours), {args.marabou_limit:g}s (Marabou alone); one core")
    print(f"10-step horizon, 64-unit policy: {cert.result} ({len(results)} queries: "
          f"{results.count('proved')} proved, {results.count('refuted')} refuted, {results.count('unknown')} unknown; "
          f"methods {methods}) in {ours:.1f}s")
    net = load_network(path)
    query = queries(spec.properties[0], 0, net)[0]
    first = cert.queries[0]
    answer = solve(query, time_limit=args.marabou_limit)
    print(f"first query ({query.name}): ours {first.result} in {first.seconds:.2f}s; Marabou alone "
          f"{answer.status} {answer.reason} in {answer.seconds:.1f}s")
    print(f"ratio (our first-query time / Marabou alone): {first.seconds / answer.seconds:.3f}")


if __name__ == "__main__":
    main()
