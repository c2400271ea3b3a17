"""Output-bound proofs on policy-shaped MLPs: our engine vs plain CROWN vs Marabou alone, on one core.

Networks: 16 observations in [-1, 1]^16 → 3 hidden ReLU layers (64 or 256 units) → 4 actions, torch's
default (Kaiming-uniform) init, seeded. For each network the largest |action| on 200k uniform samples is M;
the spec bounds every action to [-f·M, f·M] for f in 2, 1.5, 1.25: 8 one-sided queries per case.

For each case, the same 8 queries go to:

* plain CROWN: one bound pass over the whole box, no splitting (proved or not, never refutes);
* ours (:func:`flywheel.safety.verify.engine.verify_query`): bound pass, attack + branch and bound, Marabou
  for the rest, ``--limit`` seconds per query;
* Marabou alone on the whole box, ``--marabou-limit`` seconds per query, at most ``--marabou-budget``
  seconds in total (queries past the budget are reported as not run).

Run: ``.venv/bin/python benchmarks/verify_output_bounds.py [--limit 20] [--marabou-limit 60]
[--marabou-budget 600]``. Prints the ratio last: our proved count against plain CROWN's and Marabou's,
and our time on the 256-unit net at 2× against Marabou alone on the same queries.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from flywheel.safety.verify.bounds import crown
from flywheel.safety.verify.engine import verify_query
from flywheel.safety.verify.examples import random_mlp_onnx, sampled_max_abs
from flywheel.safety.verify.marabou import solve
from flywheel.safety.verify.network import load_network
from flywheel.safety.verify.spec import parse_spec, queries
from flywheel.training.onnx_export import onnx_policy

FACTORS = (2.0, 1.5, 1.25)
WIDTHS = (64, 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=20.0, help="our time limit per query (s)")
    parser.add_argument("--marabou-limit", type=float, default=60.0, help="Marabou-alone limit per query (s)")
    parser.add_argument("--marabou-budget", type=float, default=600.0, help="Marabou-alone total budget (s)")
    parser.add_argument("--samples", type=int, default=200_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"caps: ours {args.limit:g}s/query; Marabou alone {args.marabou_limit:g}s/query, "
          f"{args.marabou_budget:g}s total; one core")
    totals = {"crown": 0, "ours": 0, "marabou": 0, "queries": 0}
    ours_256_2x = marabou_256_2x = None
    marabou_spent = 0.0
    tmp = Path(tempfile.mkdtemp(prefix="fw-verify-bench-"))
    for width in WIDTHS:
        path = random_mlp_onnx(tmp / f"mlp{width}.onnx", [16, width, width, width, 4], seed=0)
        net = load_network(path)
        policy = onnx_policy(path)
        top = sampled_max_abs(path, -np.ones(16), np.ones(16), samples=args.samples, seed=0)
        eye = torch.cat([torch.eye(4), -torch.eye(4)]).double()
        plain = crown(net, -torch.ones(1, 16), torch.ones(1, 16), eye).upper[0].numpy()
        print(f"\n{width} units: max |action| on {args.samples} samples M = {top:.4f}; plain CROWN bound "
              f"{plain.max():.3f} = {plain.max() / top:.1f}× M (bound_propagation's CROWN: "
              f"{_reference_crown(width):.3f})")
        for factor in FACTORS:
            limit = factor * top
            spec = parse_spec({"properties": [{"name": "bounds", "kind": "output_bounds",
                                               "box": {"low": [-1] * 16, "high": [1] * 16},
                                               "actions": {"low": [-limit] * 4, "high": [limit] * 4}}]})
            prop = spec.properties[0]
            qs = queries(prop, 0, net)
            counts = {"crown": 0, "ours": 0, "marabou": 0}
            verdicts: dict[str, list[str]] = {"ours": [], "marabou": []}
            t_ours = t_marabou = 0.0
            for query in qs:
                one = crown(net, torch.as_tensor(query.lo)[None], torch.as_tensor(query.hi)[None],
                            torch.as_tensor(query.c)[None], torch.tensor([query.d])).upper[0, 0]
                counts["crown"] += int(float(one) <= 0)
                start = time.perf_counter()
                record = verify_query(query, prop, policy, time_limit=args.limit)
                t_ours += time.perf_counter() - start
                verdicts["ours"].append(record.result)
                counts["ours"] += int(record.result == "proved")
                if marabou_spent + args.marabou_limit <= args.marabou_budget:
                    answer = solve(query, time_limit=args.marabou_limit)
                    marabou_spent += answer.seconds
                    t_marabou += answer.seconds
                    verdicts["marabou"].append({"unsat": "proved", "sat": "refuted"}.get(answer.status, "unknown"))
                    counts["marabou"] += int(answer.status == "unsat")
                else:
                    verdicts["marabou"].append("not run")
            for key in counts:
                totals[key] += counts[key]
            totals["queries"] += len(qs)
            print(f"  {factor:.2f}× M: plain CROWN proves {counts['crown']}/8 | ours {counts['ours']}/8 "
                  f"in {t_ours:.1f}s {_summary(verdicts['ours'])} | Marabou alone {counts['marabou']}/8 in "
                  f"{t_marabou:.1f}s {_summary(verdicts['marabou'])}")
            if width == 256 and factor == 2.0:
                ran = verdicts["marabou"].count("not run") < len(qs)
                ours_256_2x, marabou_256_2x = t_ours, (t_marabou if ran else None)
    print(f"\nproved of {totals['queries']} queries: plain CROWN {totals['crown']}, ours {totals['ours']}, "
          f"Marabou alone {totals['marabou']} (Marabou spent {marabou_spent:.0f}s)")
    alone = "not run (budget spent)" if marabou_256_2x is None else f"{marabou_256_2x:.1f}s"
    print(f"256 units at 2×: ours {ours_256_2x:.1f}s vs Marabou alone {alone} (goal: proved in < 10 s)")
    ratio = totals["ours"] / max(totals["marabou"], 1)
    print(f"ratio (ours proved / Marabou-alone proved, same queries): {totals['ours']}/{totals['marabou']} = "
          f"{ratio:.2f}; ours / plain CROWN proved: {totals['ours']}/{totals['crown']}")


def _reference_crown(width: int) -> float:
    """The largest |action| bound of ``bound_propagation``'s CROWN on the same network (a cross-check)."""
    from bound_propagation import BoundModelFactory, HyperRectangle

    from flywheel.safety.verify.examples import random_mlp

    model = BoundModelFactory().build(random_mlp([16, width, width, width, 4], seed=0).double())
    box = HyperRectangle(-torch.ones(1, 16, dtype=torch.float64), torch.ones(1, 16, dtype=torch.float64))
    out = model.crown(box).concretize()
    return float(torch.maximum(out.upper.detach(), -out.lower.detach()).max())


def _summary(verdicts: list[str]) -> str:
    return "(" + ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)) + ")"


if __name__ == "__main__":
    main()
