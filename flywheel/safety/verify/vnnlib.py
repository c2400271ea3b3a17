"""VNN-LIB export and import, so users can cross-check a spec with VNN-COMP tools.

Each query becomes one ``.vnnlib`` file (the SMT-LIB subset VNN-COMP uses) over the network's inputs
``X_i`` and outputs ``Y_j``: the input box, then the *negated* property, the unsafe region a tool must show
empty (``unsat`` = proved)::

    ; action[0] <= 0.5
    (declare-const X_0 Real)
    (declare-const Y_0 Real)
    (assert (<= X_0 1.0))
    (assert (>= X_0 -1.0))
    (assert (>= Y_0 0.5))

A query on a derived network (horizon, robustness over a box) is paired with that network written as ONNX
(``Gemm``/``Relu``/``Tanh``, ``Slice``/``Concat`` for pass-through units), named in a comment.
:func:`read_vnnlib` reads box properties back: input bounds and one linear output constraint
``c·Y ≥ b``.

Example:
    >>> from flywheel.safety.verify.network import Affine, Network
    >>> from flywheel.safety.verify.query import Query
    >>> q = Query(Network([Affine(np.eye(1), np.zeros(1))]), np.array([-1.0]), np.array([1.0]),
    ...           np.array([1.0]), -0.5, "y <= 0.5")
    >>> back = read_vnnlib(to_vnnlib(q))
    >>> back.lo.tolist(), back.hi.tolist(), back.c.tolist(), back.d
    ([-1.0], [1.0], [1.0], -0.5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flywheel.errors import InvalidInput
from flywheel.safety.verify.network import Affine, Network
from flywheel.safety.verify.query import Query


def _num(value: float) -> str:
    return repr(float(value))


def to_vnnlib(query: Query, *, network_file: str | None = None) -> str:
    """The VNN-LIB text of one query (the unsafe region ``c·Y + d ≥ 0``)."""
    lines = [f"; {query.name or 'query'}"]
    if network_file:
        lines.append(f"; network: {network_file}")
    lines += [f"(declare-const X_{i} Real)" for i in range(query.lo.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(query.network.out_dim)]
    for i, (lo, hi) in enumerate(zip(query.lo, query.hi, strict=True)):
        lines.append(f"(assert (<= X_{i} {_num(hi)}))")
        lines.append(f"(assert (>= X_{i} {_num(lo)}))")
    nz = np.flatnonzero(query.c)
    if len(nz) == 1 and abs(query.c[nz[0]]) == 1.0:
        j, sign = nz[0], query.c[nz[0]]
        # sign·Y_j + d ≥ 0  ⇔  Y_j ≥ -d (sign +)  or  Y_j ≤ d (sign −)
        lines.append(f"(assert (>= Y_{j} {_num(-query.d)}))" if sign > 0 else f"(assert (<= Y_{j} {_num(query.d)}))")
    else:
        terms = " ".join(f"(* {_num(query.c[j])} Y_{j})" for j in nz)
        lines.append(f"(assert (>= (+ {terms}) {_num(-query.d)}))")
    return "\n".join(lines) + "\n"


@dataclass
class VnnProperty:
    """A box property read back: ``X`` in ``[lo, hi]``; unsafe when ``c·Y + d ≥ 0``."""

    lo: np.ndarray
    hi: np.ndarray
    c: np.ndarray
    d: float


_ASSERT = re.compile(r"\(assert\s+\((<=|>=)\s+(.+)\)\)\s*$")
_TERM = re.compile(r"\(\*\s+(\S+)\s+Y_(\d+)\)")


def read_vnnlib(text: str) -> VnnProperty:
    """Parse VNN-LIB text with box input constraints and one linear output constraint.

    Raises:
        InvalidInput: anything else (disjunctions, several output constraints, unknown variables).
    """
    n_x = len(re.findall(r"declare-const X_\d+", text))
    n_y = len(re.findall(r"declare-const Y_\d+", text))
    lo, hi = np.full(n_x, -np.inf), np.full(n_x, np.inf)
    c, d, outputs = np.zeros(n_y), 0.0, 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";")[0].strip()
        if not line or line.startswith("(declare-const"):
            continue
        match = _ASSERT.match(line)
        if not match:
            raise InvalidInput(f"line {number} is not a supported assertion: {line}", field="vnnlib",
                               allowed="(assert (<= X_i v)), (assert (>= Y_j v)), linear (+ (* a Y_j) …)")
        op, body = match.groups()
        left, _, right = body.rpartition(" ")
        left, value = left.strip(), float(right)
        if left.startswith("X_"):
            i = int(left[2:])
            if op == "<=":
                hi[i] = min(hi[i], value)
            else:
                lo[i] = max(lo[i], value)
            continue
        row = np.zeros(n_y)
        if left.startswith("Y_"):
            row[int(left[2:])] = 1.0
        else:
            for coef, j in _TERM.findall(left):
                row[int(j)] += float(coef)
        outputs += 1
        # unsafe: row·Y >= value  ⇔  row·Y - value ≥ 0 ;  row·Y <= value  ⇔  -row·Y + value ≥ 0
        c, d = (row, -value) if op == ">=" else (-row, value)
    if outputs != 1 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise InvalidInput("needs a bounded box on every X_i and exactly one output constraint", field="vnnlib")
    return VnnProperty(lo, hi, c, d)


def network_to_onnx(network: Network, path: Path) -> Path:
    """Write a :class:`Network` as ONNX (input ``X`` ``[1, n]``, output ``Y``), for VNN-LIB pairs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    current = "X"
    for i, layer in enumerate(network.layers):
        if isinstance(layer, Affine):
            inits += [numpy_helper.from_array(layer.weight.T.astype(np.float32), f"W{i}"),
                      numpy_helper.from_array(layer.bias.astype(np.float32), f"B{i}")]
            nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [f"z{i}"]))
            current, width = f"z{i}", layer.out_dim
            continue
        act = "Relu" if layer.kind == "relu" else "Tanh"
        if layer.count == width:
            nodes.append(helper.make_node(act, [current], [f"a{i}"]))
        else:
            for name, values in (("s", [0]), ("m", [layer.count]), ("e", [width]), ("ax", [1])):
                inits.append(numpy_helper.from_array(np.array(values, np.int64), f"{name}{i}"))
            nodes += [helper.make_node("Slice", [current, f"s{i}", f"m{i}", f"ax{i}"], [f"h{i}"]),
                      helper.make_node("Slice", [current, f"m{i}", f"e{i}", f"ax{i}"], [f"p{i}"]),
                      helper.make_node(act, [f"h{i}"], [f"g{i}"]),
                      helper.make_node("Concat", [f"g{i}", f"p{i}"], [f"a{i}"], axis=1)]
        current = f"a{i}"
    nodes.append(helper.make_node("Identity", [current], ["Y"]))
    graph = helper.make_graph(nodes, "flywheel-derived", [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                              [1, network.in_dim])], [helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                              [1, network.out_dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def export_queries(queries: list[tuple[str, Query]], model_path: Path, out_dir: Path) -> list[Path]:
    """Write one ``.vnnlib`` per ``(property name, query)`` into ``out_dir``, plus derived networks as ONNX.

    Queries on the policy itself refer to ``model_path``; others to ``<property>.onnx`` written alongside.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    nets: dict[int, str] = {}
    counters: dict[str, int] = {}
    for prop_name, query in queries:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", prop_name)
        key = id(query.network)
        if key not in nets:
            if query.tag.get("kind") == "output_bounds" or "point" in query.tag:
                nets[key] = str(Path(model_path).resolve())
            else:
                nets[key] = network_to_onnx(query.network, out_dir / f"{safe}.onnx").name
        k = counters[safe] = counters.get(safe, -1) + 1
        path = out_dir / f"{safe}_{k:03d}.vnnlib"
        path.write_text(to_vnnlib(query, network_file=nets[key]))
        written.append(path)
    return written
