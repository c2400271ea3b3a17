"""``verify``: every property of a spec on an ONNX policy, each query through bounds → B&B → Marabou.

For each query, within ``time_limit_per_query`` seconds:

1. one CROWN bound pass over the whole box (proved if the bound is ≤ 0);
2. a counterexample search and branch and bound, for at most ``bab_share`` of the limit (:func:`search`):
   input splitting (:mod:`~flywheel.safety.verify.bab`) when the input has at most
   ``INPUT_SPLIT_MAX_DIM`` dimensions (each split halves a box side, so few dimensions converge fast: the
   horizon and robustness properties), else α-CROWN and ReLU splitting
   (:mod:`~flywheel.safety.verify.relu_bab`);
3. Marabou on what is left: each open box if there are few, else the whole box, with the remaining time.

A candidate counterexample (from the attack or Marabou) is replayed through onnxruntime
(:mod:`~flywheel.safety.verify.replay`); only a reproduced one refutes, a spurious one is recorded as such.
A property is ``proved`` when all its queries are, ``refuted`` when one is, ``unknown`` otherwise.
Queries of a property stop at its first refutation.

Example:
    >>> certs = verify(Path("policy.onnx"), load_spec(Path("safety.yaml")), time_limit_per_query=30)  # doctest: +SKIP
    >>> [(c.property_name, c.result) for c in certs]  # doctest: +SKIP
    [('actions-in-limits', 'proved')]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flywheel.errors import InvalidInput
from flywheel.safety.verify.certificate import Certificate, QueryRecord, sha256_file, tool_versions
from flywheel.safety.verify.network import load_network
from flywheel.safety.verify.query import Query
from flywheel.safety.verify.spec import Property, Spec, queries

if TYPE_CHECKING:
    from flywheel.safety.verify.bab import BabResult

MAX_MARABOU_BOXES = 4
#: Input splitting for inputs up to this width; ReLU splitting above.
INPUT_SPLIT_MAX_DIM = 4

Progress = Callable[[str], None]


def verify(model_path: Path, spec: Spec, *, time_limit_per_query: float = 60.0, bab_share: float = 0.5,
           use_marabou: bool = True, seed: int = 0, progress: Progress | None = None) -> list[Certificate]:
    """Verify every property of ``spec`` on the ONNX policy at ``model_path``; one certificate per property.

    All inputs are checked (operators, dimensions, indices) before any solving starts.

    Raises:
        InvalidInput: an unsupported ONNX operator, or a spec that does not fit the policy (field named).
    """
    if not time_limit_per_query > 0:
        raise InvalidInput(f"got {time_limit_per_query}", field="time_limit_per_query", allowed="> 0 seconds")
    from flywheel.training.onnx_export import onnx_policy

    model_path = Path(model_path)
    network = load_network(model_path)
    planned = [(prop, queries(prop, i, network)) for i, prop in enumerate(spec.properties)]
    policy = onnx_policy(model_path)
    digest = sha256_file(model_path)
    versions = tool_versions()
    certificates = []
    for prop, qs in planned:
        start = time.perf_counter()
        records: list[QueryRecord] = []
        for query in qs:
            if progress:
                progress(f"{prop.name}: {query.name}")
            record = verify_query(query, prop, policy, time_limit=time_limit_per_query, bab_share=bab_share,
                                  use_marabou=use_marabou, seed=seed)
            records.append(record)
            if record.result == "refuted":
                break
        results = {r.result for r in records}
        result = "refuted" if "refuted" in results else "proved" if results == {"proved"} else "unknown"
        certificates.append(Certificate(
            model_sha256=digest, property_name=prop.name, property=prop.model_dump(mode="json"), result=result,
            methods=sorted({r.method for r in records}), queries=records, tool_versions=versions,
            seconds=time.perf_counter() - start))
    return certificates


def search(query: Query, *, time_limit: float, seed: int = 0) -> BabResult:
    """Branch and bound for ``query``: input splitting on narrow inputs, α-CROWN + ReLU splitting otherwise."""
    from flywheel.safety.verify.bab import branch_and_bound
    from flywheel.safety.verify.relu_bab import relu_branch_and_bound

    if query.network.in_dim <= INPUT_SPLIT_MAX_DIM:
        return branch_and_bound(query, time_limit=time_limit, seed=seed)
    return relu_branch_and_bound(query, time_limit=time_limit, seed=seed)


def verify_query(query: Query, prop: Property, policy: object, *, time_limit: float, bab_share: float = 0.5,
                 use_marabou: bool = True, seed: int = 0) -> QueryRecord:
    """Settle one query (see the module docstring); never runs much past ``time_limit``."""
    from flywheel.safety.verify.replay import replay

    start = time.perf_counter()
    spurious: list[dict] = []

    def record(result: str, method: str, **kw: object) -> QueryRecord:
        return QueryRecord(name=query.name, result=result, method=method, spurious=spurious,  # type: ignore[arg-type]
                           seconds=time.perf_counter() - start, **kw)  # type: ignore[arg-type]

    def check(x: np.ndarray, method: str) -> QueryRecord | None:
        outcome = replay(policy, prop, query, x)
        entry = {"method": method, "input": outcome.input, "measured": outcome.measured, "limit": outcome.limit,
                 "detail": outcome.detail}
        if outcome.reproduced:
            return record("refuted", method, counterexample=entry)
        spurious.append(entry)
        return None

    budget = time_limit * (bab_share if use_marabou else 1.0)
    found = search(query, time_limit=budget, seed=seed)
    if found.status == "proved":
        return record("proved", found.method, bound=found.bound)
    if found.status == "violated":
        refuted = check(found.counterexample, found.found_by)  # type: ignore[arg-type]
        if refuted:
            return refuted
    if not use_marabou:
        return record("unknown", found.method, bound=found.bound, note=f"time limit {time_limit:g}s")
    from flywheel.safety.verify.marabou import solve

    boxes = list(zip(found.open_lo, found.open_hi, strict=True))
    whole = not boxes or len(boxes) > MAX_MARABOU_BOXES
    if whole:
        boxes = [(query.lo, query.hi)]
    for i, (lo, hi) in enumerate(boxes):
        left = time_limit - (time.perf_counter() - start)
        share = left / (len(boxes) - i)
        if share < 1:
            return record("unknown", "marabou", bound=found.bound, note=f"time limit {time_limit:g}s")
        sub = Query(query.network, lo, hi, query.c, query.d, query.name, query.tag)
        answer = solve(sub, time_limit=share)
        if answer.status == "sat":
            refuted = check(answer.counterexample, "marabou")  # type: ignore[arg-type]
            if refuted:
                return refuted
            # Marabou's violation is ``≥ 0``: it often answers a point on the limit itself; climb from it
            from flywheel.safety.verify.bab import polish

            value, polished = polish(sub, answer.counterexample)  # type: ignore[arg-type]
            if value > 0:
                refuted = check(polished, "marabou+polish")
                if refuted:
                    return refuted
            return record("unknown", "marabou", bound=found.bound, note="marabou's counterexample is spurious")
        if answer.status == "unknown":
            return record("unknown", "marabou", bound=found.bound, note=answer.reason)
    return record("proved", "marabou" if whole else f"{found.method}+marabou")
