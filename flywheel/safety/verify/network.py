"""An ONNX policy as a chain of layers the verifier understands: affine maps and activations.

Every exported Flywheel policy (``flywheel.training.onnx_export``) is a chain: ``Cast``/``Flatten`` of the
observation, ``Gemm`` + ``Relu``/``Tanh`` hidden layers, and at the output a clip (``Min``/``Max`` or ``Clip``)
or a rescale (``Add``/``Mul`` by constants). :func:`load_network` reads such a graph into a
:class:`Network` in *normal form*: ``Affine, Act, Affine, Act, …, Affine``, in float64, where

* every elementwise operation with a constant (``Add``/``Sub``/``Mul``/``Div``/``Neg``) is folded into the
  neighbouring affine map,
* a clip is lowered to ReLUs exactly: ``clip(z, lo, hi) = lo + relu(z - lo) - relu(z - hi)``,
* an :class:`Act` applies its activation to its first ``count`` units and passes the others through
  (the unrolled horizon network carries the joint state through the policy's layers that way).

Anything else is refused with :class:`~flywheel.errors.InvalidInput` naming the operator and the supported
list, before any solving starts.

Example:
    >>> net = Network([Affine(np.eye(2), np.zeros(2)), Act("relu", 2), Affine(np.ones((1, 2)), np.zeros(1))])
    >>> net(np.array([[1.0, -2.0]])).tolist()
    [[1.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.errors import InvalidInput

#: The ONNX operators :func:`load_network` reads.
SUPPORTED_OPS = (
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "Tanh", "Clip", "Min", "Max",
    "Identity", "Cast", "Flatten", "Reshape", "Dropout", "Constant",
)
ACTIVATIONS = ("relu", "tanh")


@dataclass(frozen=True)
class Affine:
    """``y = weight @ x + bias`` (weight ``(out, in)``)."""

    weight: np.ndarray
    bias: np.ndarray

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[1])


@dataclass(frozen=True)
class Act:
    """An activation (``relu`` or ``tanh``) on the first ``count`` units; the remaining units pass through."""

    kind: str
    count: int


Layer = Affine | Act


def _act(kind: str, x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0) if kind == "relu" else np.tanh(x)


class Network:
    """A chain ``Affine, Act, Affine, …, Affine`` (normal form; built by :func:`compose`/:func:`load_network`).

    Attributes:
        layers: the layers, alternating, starting and ending with an :class:`Affine`.
        in_dim: input width.
        out_dim: output width.
    """

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = normalise(layers)
        self.in_dim = self.layers[0].in_dim  # type: ignore[union-attr]
        self.out_dim = self.layers[-1].out_dim  # type: ignore[union-attr]

    @property
    def affines(self) -> list[Affine]:
        return [layer for layer in self.layers if isinstance(layer, Affine)]

    @property
    def acts(self) -> list[Act]:
        return [layer for layer in self.layers if isinstance(layer, Act)]

    @property
    def kinds(self) -> set[str]:
        """The activation kinds used (``{"relu"}``, ``{"relu", "tanh"}``, …)."""
        return {act.kind for act in self.acts if act.count}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate on a batch ``(b, in_dim)`` in float64."""
        z = np.asarray(x, dtype=np.float64)
        for layer in self.layers:
            if isinstance(layer, Affine):
                z = z @ layer.weight.T + layer.bias
            else:
                z = z.copy()
                z[:, : layer.count] = _act(layer.kind, z[:, : layer.count])
        return z

    def torch_forward(self, x: Any) -> Any:
        """The same map on a torch tensor (for gradient attacks)."""
        import torch

        z = x
        for layer in self.layers:
            if isinstance(layer, Affine):
                z = z @ torch.as_tensor(layer.weight, dtype=z.dtype).T + torch.as_tensor(layer.bias, dtype=z.dtype)
            else:
                head = torch.relu(z[:, : layer.count]) if layer.kind == "relu" else torch.tanh(z[:, : layer.count])
                z = torch.cat([head, z[:, layer.count:]], dim=1)
        return z

    def __repr__(self) -> str:
        widths = [str(self.in_dim)] + [f"{a.kind}{a.count}" for a in self.acts] + [str(self.out_dim)]
        return f"Network({' → '.join(widths)})"


def normalise(layers: list[Layer]) -> list[Layer]:
    """Merge consecutive affine maps, insert identities between activations, drop empty activations.

    Example:
        >>> a = Affine(2 * np.eye(1), np.ones(1))
        >>> [type(x).__name__ for x in normalise([a, a])]
        ['Affine']
    """
    out: list[Layer] = []
    for layer in layers:
        if isinstance(layer, Act) and layer.count == 0:
            continue
        if isinstance(layer, Affine):
            if out and isinstance(out[-1], Affine):
                prev = out.pop()
                layer = Affine(layer.weight @ prev.weight, layer.weight @ prev.bias + layer.bias)  # type: ignore[union-attr]
            out.append(layer)
        else:
            if not out or isinstance(out[-1], Act):
                width = _width(out) if out else None
                if width is None:
                    raise InvalidInput("the network starts with an activation of unknown width", field="model")
                out.append(Affine(np.eye(width), np.zeros(width)))
            out.append(layer)
    if not out:
        raise InvalidInput("the network has no layers", field="model")
    if isinstance(out[-1], Act):
        width = _width(out)
        out.append(Affine(np.eye(width), np.zeros(width)))  # type: ignore[arg-type]
    return out


def _width(layers: list[Layer]) -> int | None:
    for layer in reversed(layers):
        if isinstance(layer, Affine):
            return layer.out_dim
    return None


def clip_layers(lo: np.ndarray, hi: np.ndarray) -> list[Layer]:
    """Exact ReLU form of ``clip(z, lo, hi)`` (elementwise; ``±inf`` means no bound on that side).

    Example:
        >>> net = Network([Affine(np.eye(1), np.zeros(1)), *clip_layers(np.array([-1.0]), np.array([1.0]))])
        >>> net(np.array([[-3.0], [0.5], [2.0]])).ravel().tolist()
        [-1.0, 0.5, 1.0]
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    n = lo.size
    rows: list[tuple[int, float, float]] = []  # (unit, sign in, shift): relu(sign * (z - shift))
    for i in range(n):
        if np.isfinite(lo[i]):
            rows.append((i, 1.0, lo[i]))
        if np.isfinite(hi[i]):
            rows.append((i, 1.0, hi[i]) if np.isfinite(lo[i]) else (i, -1.0, hi[i]))
    k = len(rows)
    first_w = np.zeros((k + n, n))
    first_b = np.zeros(k + n)
    out_w = np.zeros((n, k + n))
    out_b = np.zeros(n)
    for r, (i, sign, shift) in enumerate(rows):
        first_w[r, i] = sign
        first_b[r] = -sign * shift
    for i in range(n):
        mine = [r for r, row in enumerate(rows) if row[0] == i]
        if len(mine) == 2:  # lo + relu(z - lo) - relu(z - hi)
            out_w[i, mine[0]], out_w[i, mine[1]], out_b[i] = 1.0, -1.0, lo[i]
        elif len(mine) == 1 and np.isfinite(lo[i]):  # max(z, lo) = lo + relu(z - lo)
            out_w[i, mine[0]], out_b[i] = 1.0, lo[i]
        elif len(mine) == 1:  # min(z, hi) = hi - relu(hi - z)
            out_w[i, mine[0]], out_b[i] = -1.0, hi[i]
        else:  # unbounded: pass through
            first_w[k + i, i] = 1.0
            out_w[i, k + i] = 1.0
    return [Affine(first_w, first_b), Act("relu", k), Affine(out_w, out_b)]


def compose(*networks: Network) -> Network:
    """``networks[-1] ∘ … ∘ networks[0]``."""
    layers: list[Layer] = []
    for net in networks:
        layers.extend(net.layers)
    return Network(layers)


# --- ONNX ------------------------------------------------------------------------------------------------


def _unsupported(op: str, name: str) -> InvalidInput:
    return InvalidInput(
        f"operator {op} (node {name or '?'}) is not supported by the verifier",
        field="model", allowed=", ".join(SUPPORTED_OPS),
        hint="Export a plain MLP policy (Gemm + Relu/Tanh, clipping/scaling at the output).",
    )


def load_network(path: Path) -> Network:
    """Read an ONNX policy into a :class:`Network` (see the module docstring for what is accepted).

    Raises:
        InvalidInput: the file is not ONNX, has several inputs/outputs, an unsupported operator, or is not a
            chain (``field="model"``).

    Example:
        >>> net = load_network(Path("policy.onnx"))  # doctest: +SKIP
        >>> net.in_dim, net.out_dim  # doctest: +SKIP
        (16, 4)
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist", field="model")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several kinds
        raise InvalidInput(f"{path} is not an ONNX model: {exc}", field="model") from None
    graph = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise InvalidInput(f"has {len(inputs)} inputs and {len(graph.output)} outputs", field="model",
                           allowed="one observation input, one action output")
    for node in graph.node:  # refuse unknown operators before reading anything else
        if node.op_type not in SUPPORTED_OPS:
            raise _unsupported(node.op_type, node.name)
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    width = dims[-1] if dims and dims[-1] > 0 else None
    current = inputs[0].name
    raw: list[Layer] = []
    for node in graph.node:
        width, current = _read_node(node, consts, raw, current, width)
    if current != graph.output[0].name:
        raise InvalidInput("the output is not computed from the observation by a chain of layers", field="model")
    if width is None:
        raise InvalidInput("cannot tell the observation width", field="model")
    if not raw or not isinstance(raw[0], Affine):
        raw.insert(0, Affine(np.eye(width), np.zeros(width)))
    return Network(raw)


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _read_node(node: Any, consts: dict[str, np.ndarray], raw: list[Layer], current: str,
               width: int | None) -> tuple[int | None, str]:
    """Append ``node``'s layers to ``raw``; returns the new width and the name of the data tensor."""
    from onnx import numpy_helper

    op, name = node.op_type, node.name
    ins = list(node.input)
    if op == "Constant":
        consts[node.output[0]] = numpy_helper.to_array(_attr(node, "value", None)).astype(np.float64)
        return width, current
    if all(i in consts or i == "" for i in ins):  # constant folding (Identity of an initializer, …)
        if op in ("Identity", "Cast"):
            consts[node.output[0]] = consts[ins[0]]
            return width, current
        raise InvalidInput(f"operator {op} (node {name}) on constants only", field="model",
                           allowed="constant Identity/Cast")
    data = [i for i in ins if i and i not in consts]
    if len(data) != 1 or data[0] != current:
        raise InvalidInput(f"node {name} ({op}) does not continue a single chain", field="model",
                           allowed="a feed-forward chain (MLP)")
    out = node.output[0]
    if width is None and op not in ("Gemm", "MatMul"):
        raise InvalidInput("cannot tell the observation width", field="model")

    def vec(value: np.ndarray) -> np.ndarray:
        flat = np.asarray(value, dtype=np.float64)
        if flat.size == 1:
            return np.full(width, float(flat.ravel()[0]))  # type: ignore[arg-type]
        flat = flat.reshape(-1)
        if flat.size != width:
            raise InvalidInput(f"node {name} ({op}) has a constant of {flat.size} values for width {width}",
                               field="model")
        return flat

    def diag(scale: np.ndarray, shift: np.ndarray) -> Affine:
        return Affine(np.diag(scale), shift)

    if op in ("Identity", "Flatten", "Dropout"):
        return width, out
    if op == "Cast":
        if _attr(node, "to", 1) not in (1, 10, 11):  # float, float16, double
            raise InvalidInput(f"node {name} casts to a non-float type", field="model")
        return width, out
    if op == "Reshape":
        shape = consts.get(ins[1])
        if shape is None or shape.size != 2 or shape[-1] not in (-1, width):
            raise InvalidInput(f"node {name} (Reshape) changes the feature layout", field="model",
                               allowed="[-1, n] or [batch, n]")
        return width, out
    if op == "Gemm":
        if _attr(node, "transA", 0):
            raise InvalidInput(f"node {name} (Gemm) transposes the data", field="model", allowed="transA=0")
        weight = consts[ins[1]]
        weight = weight.T if _attr(node, "transB", 0) else weight  # now (in, out)
        weight = weight.T * float(_attr(node, "alpha", 1.0))
        bias = np.zeros(weight.shape[0])
        if len(ins) > 2 and ins[2]:
            bias = np.broadcast_to(consts[ins[2]] * float(_attr(node, "beta", 1.0)), weight.shape[:1]).copy()
        raw.append(Affine(weight, bias))
        return weight.shape[0], out
    if op == "MatMul":
        if ins[0] != current:
            raise InvalidInput(f"node {name} (MatMul) multiplies from the left", field="model")
        weight = consts[ins[1]].T
        raw.append(Affine(weight, np.zeros(weight.shape[0])))
        return weight.shape[0], out
    if op in ("Relu", "Tanh"):
        raw.append(Act(op.lower(), width))  # type: ignore[arg-type]
        return width, out
    if op == "Neg":
        raw.append(diag(-np.ones(width), np.zeros(width)))  # type: ignore[arg-type]
        return width, out
    if op in ("Add", "Sub", "Mul", "Div"):
        const_pos = 0 if ins[0] in consts else 1
        c = vec(consts[ins[const_pos]])
        one = np.ones(width)  # type: ignore[arg-type]
        if op == "Add":
            raw.append(diag(one, c))
        elif op == "Mul":
            raw.append(diag(c, np.zeros(width)))  # type: ignore[arg-type]
        elif op == "Sub":
            raw.append(diag(one, -c) if const_pos == 1 else diag(-one, c))
        else:
            if const_pos == 0 or np.any(c == 0):
                raise InvalidInput(f"node {name} (Div) divides by the data or by zero", field="model")
            raw.append(diag(1.0 / c, np.zeros(width)))  # type: ignore[arg-type]
        return width, out
    if op in ("Clip", "Min", "Max"):
        lo = np.full(width, -np.inf)  # type: ignore[arg-type]
        hi = np.full(width, np.inf)  # type: ignore[arg-type]
        if op == "Clip":
            low = consts.get(ins[1]) if len(ins) > 1 and ins[1] else _attr(node, "min", None)
            high = consts.get(ins[2]) if len(ins) > 2 and ins[2] else _attr(node, "max", None)
            lo = vec(np.asarray(low)) if low is not None else lo
            hi = vec(np.asarray(high)) if high is not None else hi
        else:
            if len(ins) != 2:
                raise InvalidInput(f"node {name} ({op}) has {len(ins)} inputs", field="model", allowed="2")
            c = vec(consts[ins[0] if ins[0] in consts else ins[1]])
            lo, hi = (c, hi) if op == "Max" else (lo, c)
        if np.any(lo > hi):
            raise InvalidInput(f"node {name} ({op}) clips to an empty range", field="model")
        if not raw or not isinstance(raw[-1], Affine):
            raw.append(Affine(np.eye(width), np.zeros(width)))  # type: ignore[arg-type]
        raw.extend(clip_layers(lo, hi))
        return width, out
    raise _unsupported(op, name)  # pragma: no cover - SUPPORTED_OPS is checked first
