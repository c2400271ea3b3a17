"""Marabou for the queries the bound pass and branch and bound leave open.

The query is built from the same :class:`Network` the bounds were computed on (read from the ONNX file, or
the unrolled / twin network derived from it): one Marabou variable per unit, an equation per affine output,
``addRelu`` per ReLU, ``tanh(x) = 2·sigmoid(2x) - 1`` per tanh (as Marabou's own ONNX reader does), the input
box as variable bounds, and the *negated* property ``c·y + d ≥ 0`` as an inequality. The network is not
handed over as ONNX because Marabou's reader has no ``Min``/``Max``/``Clip`` (the clip of every PPO policy)
and no unrolled dynamics; our lowering is exact, so it is the same function.

Marabou runs in a child process with its own ``timeoutInSeconds`` and a hard kill a few seconds later, so a
query can never run past its limit; the answer is ``unsat`` (a proof), ``sat`` with the input, or
``unknown`` (timeout, error, or a box Marabou could not finish).

Example:
    >>> from flywheel.safety.verify.network import Affine, Network
    >>> from flywheel.safety.verify.query import Query
    >>> net = Network([Affine(np.array([[1.0]]), np.zeros(1))])
    >>> solve(Query(net, np.array([0.0]), np.array([1.0]), np.array([1.0]), -2.0), time_limit=10).status
    'unsat'
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flywheel.safety.verify.network import Act, Affine, Network
from flywheel.safety.verify.query import Query

GRACE_SECONDS = 5.0


@dataclass
class MarabouResult:
    """``status`` is ``unsat``, ``sat`` (``counterexample`` set) or ``unknown`` (``reason`` says why)."""

    status: str
    counterexample: np.ndarray | None
    seconds: float
    reason: str = ""


def version() -> str:
    """The installed maraboupy version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as pkg_version

    try:
        return pkg_version("maraboupy")
    except PackageNotFoundError:  # pragma: no cover
        return "not installed"


def solve(query: Query, *, time_limit: float) -> MarabouResult:
    """Run Marabou on ``query`` in a child process for at most ``time_limit`` (+ a few seconds to stop).

    Args:
        query: the query (its box and row).
        time_limit: seconds; at least 1.
    """
    start = time.perf_counter()
    limit = max(1, int(time_limit))
    with tempfile.TemporaryDirectory(prefix="fw-marabou-") as tmp:
        data = Path(tmp) / "query.npz"
        out = Path(tmp) / "result.json"
        _save(query, data, limit)
        try:
            proc = subprocess.run([sys.executable, "-m", "flywheel.safety.verify.marabou", str(data), str(out)],
                                  capture_output=True, text=True, timeout=limit + GRACE_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            return MarabouResult("unknown", None, time.perf_counter() - start, f"killed after {limit}s")
        seconds = time.perf_counter() - start
        if not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return MarabouResult("unknown", None, seconds, f"marabou failed: {tail[0]}")
        answer = json.loads(out.read_text())
    if answer["status"] == "sat":
        return MarabouResult("sat", np.asarray(answer["input"], dtype=np.float64), seconds)
    if answer["status"] == "unsat":
        return MarabouResult("unsat", None, seconds)
    return MarabouResult("unknown", None, seconds, answer.get("reason", "timeout"))


def _save(query: Query, path: Path, limit: int) -> None:
    arrays: dict[str, np.ndarray] = {"lo": query.lo, "hi": query.hi, "c": query.c, "d": np.array([query.d]),
                                     "limit": np.array([limit])}
    kinds = []
    for i, layer in enumerate(query.network.layers):
        if isinstance(layer, Affine):
            arrays[f"w{i}"], arrays[f"b{i}"] = layer.weight, layer.bias
            kinds.append("affine")
        else:
            arrays[f"n{i}"] = np.array([layer.count])
            kinds.append(layer.kind)
    arrays["kinds"] = np.array(kinds)
    np.savez(path, **arrays)


def _load(path: Path) -> tuple[Query, int]:
    data = np.load(path)
    layers: list[Affine | Act] = []
    for i, kind in enumerate(data["kinds"].tolist()):
        if kind == "affine":
            layers.append(Affine(data[f"w{i}"], data[f"b{i}"]))
        else:
            layers.append(Act(kind, int(data[f"n{i}"][0])))
    query = Query(Network(layers), data["lo"], data["hi"], data["c"], float(data["d"][0]))
    return query, int(data["limit"][0])


def build(query: Query) -> tuple[object, list[int]]:
    """The Marabou input query for ``query``: returns the network builder and the input variables."""
    from maraboupy import MarabouNetwork

    mnet = MarabouNetwork.MarabouNetwork()
    inputs = [mnet.getNewVariable() for _ in range(query.network.in_dim)]
    for var, lo, hi in zip(inputs, query.lo, query.hi, strict=True):
        mnet.setLowerBound(var, float(lo))
        mnet.setUpperBound(var, float(hi))
    current = list(inputs)
    for layer in query.network.layers:
        if isinstance(layer, Affine):
            nxt = []
            for row, bias in zip(layer.weight, layer.bias, strict=True):
                var = mnet.getNewVariable()
                nz = np.flatnonzero(row)
                # row·x + bias = var  ⇔  row·x - var = -bias
                mnet.addEquality([current[j] for j in nz] + [var], [float(row[j]) for j in nz] + [-1.0],
                                 -float(bias), isProperty=False)
                nxt.append(var)
            current = nxt
        else:
            nxt = []
            for j, var in enumerate(current):
                if j >= layer.count:
                    nxt.append(var)
                    continue
                out = mnet.getNewVariable()
                if layer.kind == "relu":
                    mnet.addRelu(var, out)
                else:
                    doubled, sig = mnet.getNewVariable(), mnet.getNewVariable()
                    mnet.addEquality([var, doubled], [2.0, -1.0], 0.0, isProperty=False)
                    mnet.addSigmoid(doubled, sig)
                    mnet.addEquality([sig, out], [2.0, -1.0], 1.0, isProperty=False)
                    mnet.setLowerBound(out, -1.0)
                    mnet.setUpperBound(out, 1.0)
                nxt.append(out)
            current = nxt
    nz = np.flatnonzero(query.c)
    # violation: c·y + d ≥ 0  ⇔  -c·y ≤ d
    mnet.addInequality([current[j] for j in nz], [-float(query.c[j]) for j in nz], float(query.d), isProperty=True)
    mnet.inputVars = [np.array(inputs)]
    mnet.outputVars = [np.array(current)]
    return mnet, inputs


def _worker(data: Path, out: Path) -> None:
    from maraboupy import Marabou

    query, limit = _load(data)
    mnet, inputs = build(query)
    options = Marabou.createOptions(verbosity=0, timeoutInSeconds=limit, numWorkers=1)
    exit_code, values, stats = mnet.solve(options=options, verbose=False)  # type: ignore[attr-defined]
    if exit_code == "sat":
        answer = {"status": "sat", "input": [values[v] for v in inputs]}
    elif exit_code == "unsat":
        answer = {"status": "unsat"}
    else:
        answer = {"status": "unknown", "reason": "timeout" if stats.hasTimedOut() else str(exit_code)}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(answer))
    tmp.replace(out)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]))
