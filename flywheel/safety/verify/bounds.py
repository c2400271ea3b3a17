"""Sound linear bounds (CROWN / DeepPoly-style back-substitution) for a :class:`Network` over input boxes.

For every box of a batch, :func:`crown` bounds ``max c·f(x)`` for each row ``c`` of a spec matrix: it
relaxes each activation by two lines valid on its pre-activation interval, and substitutes them backwards
from the spec to the input, where a linear function's maximum over a box is exact. Pre-activation intervals
of each layer come from the same back-substitution (each layer's rows through all layers below it),
intersected with plain interval arithmetic and with the bounds of the box's parent (a sub-box inherits
them: that is what makes branch and bound cheap), and only the units that are still *unstable* in some box
of the batch are back-substituted.

Relaxations (each is sound on ``[l, u]``; tested against sampling in ``tests/safety/verify``):

* ReLU: stable units exactly; unstable ``u/(u-l)·(x-l)`` above, ``0`` or ``x`` below (the larger area).
* tanh: convex part (``u ≤ 0``): the chord above and the tangent at the midpoint below; concave part
  (``l ≥ 0``) mirrored; across 0: both lines with the smaller end slope ``k = min(tanh'(l), tanh'(u))``
  through the end points (tanh' is unimodal, so ``tanh(x) - tanh(l) ≥ k(x - l)`` and
  ``tanh(u) - tanh(x) ≥ k(u - x)``).

All arithmetic is float64, and every bound is widened by a tiny relative slack, so the proofs are about
the real-valued network given by the (float32) weights.

Example:
    >>> from flywheel.safety.verify.network import Act, Affine, Network
    >>> net = Network([Affine(np.array([[1.0], [-1.0]]), np.zeros(2)), Act("relu", 2),
    ...                Affine(np.array([[1.0, 1.0]]), np.zeros(1))])          # |x|
    >>> lo, hi = torch.tensor([[-1.0]]), torch.tensor([[2.0]])
    >>> ub = crown(net, lo, hi, torch.tensor([[1.0]])).upper
    >>> 2.0 <= float(ub[0, 0]) <= 2.0 + 1e-6
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flywheel.safety.verify.network import Act, Network

SLACK = 1e-9  # relative + absolute widening of every computed bound (float64 rounding)
DTYPE = torch.float64


@dataclass
class Bounds:
    """The result of :func:`crown` for a batch of ``B`` boxes and ``K`` spec rows.

    Attributes:
        upper: ``(B, K)`` sound upper bounds of ``c_k · f(x) + d_k`` over each box.
        coef: ``(B, K, n_in)`` the linear upper bound's input coefficients (``upper`` is its box maximum);
            used to pick split dimensions and the most promising vertex.
        pre: per activation layer, ``(lower, upper)`` pre-activation bounds ``(B, width)`` (to pass to
            sub-boxes as ``parent``).
    """

    upper: torch.Tensor
    coef: torch.Tensor
    pre: list[tuple[torch.Tensor, torch.Tensor]]


class TorchNet:
    """A :class:`Network`'s weights as float64 tensors (made once per verification)."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.weights = [torch.as_tensor(a.weight, dtype=DTYPE) for a in net.affines]
        self.biases = [torch.as_tensor(a.bias, dtype=DTYPE) for a in net.affines]
        self.acts: list[Act] = net.acts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = z @ w.T + b
            if i < len(self.acts):
                act = self.acts[i]
                head = torch.relu(z[:, : act.count]) if act.kind == "relu" else torch.tanh(z[:, : act.count])
                z = torch.cat([head, z[:, act.count:]], dim=1)
        return z


def relaxation(kind: str, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Lines ``aL·x + bL ≤ σ(x) ≤ aU·x + bU`` valid on ``[lo, hi]``; returns ``(aL, bL, aU, bU)``."""
    if kind == "relu":
        active = lo >= 0
        inactive = hi <= 0
        unstable = ~(active | inactive)
        span = torch.where(unstable, hi - lo, torch.ones_like(lo))
        a_u = torch.where(unstable, hi / span, active.to(lo.dtype))
        b_u = torch.where(unstable, -lo * hi / span, torch.zeros_like(lo))
        a_l = torch.where(unstable, (hi > -lo).to(lo.dtype), active.to(lo.dtype))
        return a_l, torch.zeros_like(lo), a_u, b_u
    return _tanh_relaxation(lo, hi)


def _tanh_relaxation(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, ...]:
    t_lo, t_hi = torch.tanh(lo), torch.tanh(hi)
    width = hi - lo
    tiny = width < 1e-9
    chord = torch.where(tiny, 1.0 - t_lo**2, (t_hi - t_lo) / torch.where(tiny, torch.ones_like(width), width))
    mid = 0.5 * (lo + hi)
    t_mid = torch.tanh(mid)
    d_mid = 1.0 - t_mid**2
    k = torch.minimum(1.0 - t_lo**2, 1.0 - t_hi**2)
    convex = hi <= 0
    concave = lo >= 0
    # lower line
    a_l = torch.where(convex, d_mid, torch.where(concave, chord, k))
    b_l = torch.where(convex, t_mid - d_mid * mid, torch.where(concave, t_lo - chord * lo, t_lo - k * lo))
    # upper line
    a_u = torch.where(convex, chord, torch.where(concave, d_mid, k))
    b_u = torch.where(convex, t_lo - chord * lo, torch.where(concave, t_mid - d_mid * mid, t_hi - k * hi))
    # degenerate intervals: a constant pair around tanh(lo)
    a_l = torch.where(tiny, torch.zeros_like(lo), a_l)
    a_u = torch.where(tiny, torch.zeros_like(lo), a_u)
    b_l = torch.where(tiny, torch.minimum(t_lo, t_hi), b_l)
    b_u = torch.where(tiny, torch.maximum(t_lo, t_hi), b_u)
    eps = 1e-12
    return a_l, b_l - eps, a_u, b_u + eps


def apply_splits(z_lo: torch.Tensor, z_hi: torch.Tensor, sign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp the pre-activation bounds of the first ``sign.shape[1]`` units to their split side.

    ``sign`` is ``(B, n)``: ``+1`` means the unit's pre-activation is ≥ 0 on the subdomain, ``-1`` ≤ 0.
    An empty interval (a contradictory split) collapses to ``hi`` and stays sound: it bounds no input.
    """
    n = sign.shape[1]
    if not n:
        return z_lo, z_hi
    z_lo, z_hi = z_lo.clone(), z_hi.clone()
    zero = torch.zeros((), dtype=z_lo.dtype)
    z_lo[:, :n] = torch.where(sign > 0, torch.maximum(z_lo[:, :n], zero), z_lo[:, :n])
    z_hi[:, :n] = torch.where(sign < 0, torch.minimum(z_hi[:, :n], zero), z_hi[:, :n])
    return z_lo, z_hi


def _widen_up(x: torch.Tensor) -> torch.Tensor:
    return x + SLACK * (1.0 + x.abs())


def _back(tn: TorchNet, lam: torch.Tensor, const: torch.Tensor, top: int,
          relax: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Substitute ``lam · z_top + const`` (``z_top``: output of affine ``top``) down to the input.

    Returns the input coefficients ``(B, K, n_in)`` and the constant ``(B, K)`` of a linear upper bound.
    """
    for i in range(top, -1, -1):
        w, b = tn.weights[i], tn.biases[i]
        const = const + lam @ b
        lam = lam @ w
        if i == 0:
            break
        act = tn.acts[i - 1]
        a_l, b_l, a_u, b_u = relax[i - 1]
        n = act.count
        head = lam[..., :n]
        pos, neg = head.clamp(min=0), head.clamp(max=0)
        const = const + (pos * b_u[:, None, :]).sum(-1) + (neg * b_l[:, None, :]).sum(-1)
        lam = torch.cat([pos * a_u[:, None, :] + neg * a_l[:, None, :], lam[..., n:]], dim=-1)
    return lam, const


def _box_max(lam: torch.Tensor, const: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    center = 0.5 * (lo + hi)
    radius = 0.5 * (hi - lo)
    return const + (lam @ center[:, :, None]).squeeze(-1) + (lam.abs() @ radius[:, :, None]).squeeze(-1)


def crown(net: Network | TorchNet, lo: torch.Tensor, hi: torch.Tensor, spec: torch.Tensor,
          offset: torch.Tensor | None = None, *,
          parent: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
          splits: list[torch.Tensor] | None = None) -> Bounds:
    """Sound upper bounds of ``spec @ f(x) + offset`` over each box ``[lo[b], hi[b]]``.

    Args:
        net: the network (or its :class:`TorchNet`, to reuse the tensors).
        lo: ``(B, n_in)`` box lower corners.
        hi: ``(B, n_in)`` box upper corners.
        spec: ``(K, n_out)`` rows ``c_k``.
        offset: ``(K,)`` constants ``d_k`` (default 0).
        parent: pre-activation bounds of boxes containing these boxes (same batch order), intersected in.
        splits: per activation layer, ``(B, count)`` ReLU split constraints of each box's subdomain: ``+1``
            (pre-activation ≥ 0), ``-1`` (≤ 0) or ``0`` (free). The bounds then hold for the inputs of the
            box that satisfy them (ReLU-splitting branch and bound).

    Returns:
        :class:`Bounds`.
    """
    tn = net if isinstance(net, TorchNet) else TorchNet(net)
    lo = lo.to(DTYPE)
    hi = hi.to(DTYPE)
    batch = lo.shape[0]
    pre: list[tuple[torch.Tensor, torch.Tensor]] = []
    relax: list[tuple[torch.Tensor, ...]] = []
    post_lo, post_hi = lo, hi  # interval of the current layer's input (for interval arithmetic)
    for k, act in enumerate(tn.acts):
        w, b = tn.weights[k], tn.biases[k]
        center, radius = 0.5 * (post_lo + post_hi), 0.5 * (post_hi - post_lo)
        mid = center @ w.T + b
        rad = radius @ w.abs().T
        z_lo, z_hi = mid - rad, mid + rad
        if parent is not None:
            z_lo = torch.maximum(z_lo, parent[k][0])
            z_hi = torch.minimum(z_hi, parent[k][1])
        if splits is not None:
            z_lo, z_hi = apply_splits(z_lo, z_hi, splits[k])
        if k > 0:
            n = act.count
            unstable = ((z_lo[:, :n] < 0) & (z_hi[:, :n] > 0)) if act.kind == "relu" else (
                torch.ones_like(z_lo[:, :n], dtype=torch.bool))
            rows = torch.nonzero(unstable.any(0)).flatten()
            if rows.numel():
                eye = torch.eye(w.shape[0], dtype=DTYPE)[rows]
                lam = torch.cat([eye, -eye], 0).expand(batch, -1, -1)
                const = torch.zeros(batch, 2 * rows.numel(), dtype=DTYPE)
                lam, const = _back(tn, lam, const, k, relax)
                best = _widen_up(_box_max(lam, const, lo, hi))
                m = rows.numel()
                z_hi[:, rows] = torch.minimum(z_hi[:, rows], best[:, :m])
                z_lo[:, rows] = torch.maximum(z_lo[:, rows], -best[:, m:])
        z_lo = torch.minimum(z_lo, z_hi)  # parent ∩ child may cross by rounding only
        pre.append((z_lo, z_hi))
        relax.append(relaxation(act.kind, z_lo[:, : act.count], z_hi[:, : act.count]))
        a_lo, a_hi = z_lo.clone(), z_hi.clone()
        if act.count:
            f = (lambda t: t.clamp(min=0)) if act.kind == "relu" else torch.tanh
            a_lo[:, : act.count] = f(z_lo[:, : act.count])
            a_hi[:, : act.count] = f(z_hi[:, : act.count])
        post_lo, post_hi = a_lo, a_hi
    spec = spec.to(DTYPE)
    lam = spec.expand(batch, -1, -1)
    const = torch.zeros(batch, spec.shape[0], dtype=DTYPE) if offset is None else (
        offset.to(DTYPE).expand(batch, -1).clone())
    lam, const = _back(tn, lam, const, len(tn.weights) - 1, relax)
    upper = _widen_up(_box_max(lam, const, lo, hi))
    return Bounds(upper=upper, coef=lam, pre=pre)


def interval(net: Network, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output bounds of ``net`` over one box ``[lo, hi]`` by CROWN (both sides).

    Example:
        >>> from flywheel.safety.verify.network import Affine, Network
        >>> l, u = interval(Network([Affine(np.array([[2.0]]), np.array([1.0]))]), np.array([0.0]), np.array([1.0]))
        >>> round(float(l[0]), 6), round(float(u[0]), 6)
        (1.0, 3.0)
    """
    eye = torch.eye(net.out_dim, dtype=DTYPE)
    spec = torch.cat([eye, -eye], 0)
    ub = crown(net, torch.as_tensor(lo, dtype=DTYPE)[None], torch.as_tensor(hi, dtype=DTYPE)[None], spec).upper[0]
    m = net.out_dim
    return -ub[m:].numpy(), ub[:m].numpy()
