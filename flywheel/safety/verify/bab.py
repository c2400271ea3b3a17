"""Input-splitting branch and bound over CROWN bounds, with a counterexample search on the open boxes.

A *query* asks whether ``c · f(x) + d ≤ 0`` for every ``x`` in a box. :func:`branch_and_bound` keeps the
boxes not proved yet; each round it takes the ``batch`` boxes with the largest upper bounds, splits each in
two along the dimension with the largest ``|coefficient| × width`` of its linear bound (the input that moves
the bound most), bounds the children together (they inherit their parent's intermediate bounds), drops the
proved ones, and evaluates the network at each child's worst vertex of the linear bound and its centre.
A first attack (random samples then projected gradient ascent) runs before splitting. It stops on a
proof, on a concrete violation, on the time limit, or when the open boxes reach ``max_boxes``; the boxes
still open are returned for Marabou.

Example:
    >>> from flywheel.safety.verify.network import Affine, Network
    >>> net = Network([Affine(np.array([[1.0, 1.0]]), np.zeros(1))])
    >>> query = Query(net, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([1.0]), -2.5)
    >>> branch_and_bound(query, time_limit=5).status
    'proved'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from flywheel.safety.verify.bounds import DTYPE, TorchNet, crown
from flywheel.safety.verify.query import Query


@dataclass
class BabResult:
    """What :func:`branch_and_bound` found.

    Attributes:
        status: ``proved``, ``violated`` (with ``counterexample``) or ``unknown``.
        bound: the largest upper bound of ``c·f(x) + d`` over the open boxes (≤ 0 when proved).
        best_value: the largest value seen at a concrete input.
        counterexample: the input with ``best_value > 0``, when violated.
        open_lo: lower corners of the boxes left open (``unknown``).
        open_hi: their upper corners.
        boxes: boxes bounded.
        seconds: wall time.
        found_by: ``attack`` or ``branch-and-bound`` (which found the counterexample).
        method: what proved it (``crown``, ``alpha-crown``, ``branch-and-bound`` (input splitting),
            ``relu-branch-and-bound``), or what ran (unknown).
    """

    status: str
    bound: float
    best_value: float
    counterexample: np.ndarray | None = None
    open_lo: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    open_hi: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    boxes: int = 0
    seconds: float = 0.0
    found_by: str = "attack"
    method: str = "branch-and-bound"


def attack(query: Query, *, seed: int = 0, samples: int = 2048, steps: int = 60,
           starts: np.ndarray | None = None, tn: TorchNet | None = None) -> tuple[float, np.ndarray]:
    """Search for a violation: random samples, then projected gradient ascent from the best ones.

    Returns:
        the best value of ``c·f(x) + d`` found and its input.
    """
    tn = tn or TorchNet(query.network)
    rng = np.random.default_rng(seed)
    lo, hi = query.lo, query.hi
    x = rng.uniform(lo, hi, size=(samples, lo.size))
    corners = rng.integers(0, 2, size=(samples // 8, lo.size)).astype(np.float64)
    x = np.concatenate([x, lo + corners * (hi - lo), 0.5 * (lo + hi)[None]])
    if starts is not None:
        x = np.concatenate([x, np.clip(starts, lo, hi)])
    values = query.value(x)
    order = np.argsort(-values)[:32]
    c = torch.as_tensor(query.c, dtype=DTYPE)
    lo_t, hi_t = torch.as_tensor(lo, dtype=DTYPE), torch.as_tensor(hi, dtype=DTYPE)
    xt = torch.as_tensor(x[order], dtype=DTYPE).requires_grad_(True)
    step = 0.1 * (hi_t - lo_t)
    best_v, best_x = float(values[order[0]]), x[order[0]]
    for i in range(steps):
        out = tn(xt) @ c + query.d
        top = int(torch.argmax(out))
        if float(out[top].detach()) > best_v:
            best_v, best_x = float(out[top].detach()), xt[top].detach().numpy().copy()
        if best_v > 0:
            break
        (grad,) = torch.autograd.grad(out.sum(), xt)
        with torch.no_grad():
            scale = step * (0.95 ** i)
            xt = torch.minimum(torch.maximum(xt + scale * torch.sign(grad), lo_t), hi_t).requires_grad_(True)
    return best_v, best_x


def polish(query: Query, x: np.ndarray, *, rounds: int = 30) -> tuple[float, np.ndarray]:
    """Coordinate ascent from ``x``: move one input at a time by ± (box width · 2^-k), keep the best.

    For a solver's point that sits on the limit (``value = 0``), where gradient signs jump out of narrow
    regions. Returns the best value of ``c·f(x) + d`` found and its input.
    """
    lo, hi = query.lo, query.hi
    n = lo.size
    steps = (hi - lo)[None, :] * np.exp2(-np.arange(1, 16))[:, None]  # (15, n)
    best_x = np.clip(np.asarray(x, np.float64), lo, hi)
    best_v = float(query.value(best_x[None])[0])
    for _ in range(rounds):
        if best_v > 0:
            break
        moves = np.zeros((2 * steps.shape[0] * n, n))
        for j in range(n):
            block = slice(2 * steps.shape[0] * j, 2 * steps.shape[0] * (j + 1))
            moves[block, j] = np.concatenate([steps[:, j], -steps[:, j]])
        candidates = np.clip(best_x[None] + moves, lo, hi)
        values = query.value(candidates)
        top = int(np.argmax(values))
        if values[top] <= best_v:
            break
        best_v, best_x = float(values[top]), candidates[top]
    return best_v, best_x


def branch_and_bound(query: Query, *, time_limit: float, batch: int = 256, max_boxes: int = 200_000,
                     seed: int = 0) -> BabResult:
    """Prove ``query`` by input splitting, or find a violation, within ``time_limit`` seconds.

    Args:
        query: the query.
        time_limit: wall-clock seconds.
        batch: boxes split per round.
        max_boxes: stop (``unknown``) when this many boxes are open.
        seed: for the attack's random samples.
    """
    start = time.perf_counter()
    tn = TorchNet(query.network)
    spec = torch.as_tensor(query.c, dtype=DTYPE)[None]
    offset = torch.tensor([query.d], dtype=DTYPE)
    lo = torch.as_tensor(query.lo, dtype=DTYPE)[None]
    hi = torch.as_tensor(query.hi, dtype=DTYPE)[None]
    first = crown(tn, lo, hi, spec, offset)
    bound = float(first.upper[0, 0])
    if bound <= 0:
        return BabResult("proved", bound, -np.inf, boxes=1, seconds=time.perf_counter() - start, method="crown")
    vertex = _worst_vertex(first.coef[:, 0], lo, hi).numpy()
    best_v, best_x = attack(query, seed=seed, starts=vertex, tn=tn)
    if best_v > 0:
        return BabResult("violated", bound, best_v, best_x, boxes=1, seconds=time.perf_counter() - start)
    boxes_lo, boxes_hi, ub, coef, pre = lo, hi, first.upper[:, 0], first.coef[:, 0], first.pre
    count = 1
    leaf_max = -np.inf  # the largest bound among the boxes proved so far
    while boxes_lo.shape[0]:
        if time.perf_counter() - start > time_limit or boxes_lo.shape[0] >= max_boxes:
            break
        order = torch.argsort(ub, descending=True)
        take, rest = order[:batch], order[batch:]
        p_lo, p_hi, p_coef = boxes_lo[take], boxes_hi[take], coef[take]
        dim = torch.argmax(p_coef.abs() * (p_hi - p_lo), dim=1)
        rows = torch.arange(take.numel())
        mid = 0.5 * (p_lo[rows, dim] + p_hi[rows, dim])
        left_hi, right_lo = p_hi.clone(), p_lo.clone()
        left_hi[rows, dim] = mid
        right_lo[rows, dim] = mid
        c_lo = torch.cat([p_lo, right_lo])
        c_hi = torch.cat([left_hi, p_hi])
        parent = [(torch.cat([lo_k[take]] * 2), torch.cat([hi_k[take]] * 2)) for lo_k, hi_k in pre]
        child = crown(tn, c_lo, c_hi, spec, offset, parent=parent)
        count += c_lo.shape[0]
        c_ub, c_coef = child.upper[:, 0], child.coef[:, 0]
        # concrete checks: the worst vertex of each child's linear bound, and its centre
        probes = torch.cat([_worst_vertex(c_coef, c_lo, c_hi), 0.5 * (c_lo + c_hi)])
        values = tn(probes) @ spec[0] + offset[0]
        top = int(torch.argmax(values))
        if float(values[top]) > best_v:
            best_v, best_x = float(values[top]), probes[top].numpy().copy()
        if best_v > 0:
            return BabResult("violated", float(ub.max()), best_v, best_x, boxes=count,
                             seconds=time.perf_counter() - start, found_by="branch-and-bound")
        keep = c_ub > 0
        if (~keep).any():
            leaf_max = max(leaf_max, float(c_ub[~keep].max()))
        boxes_lo = torch.cat([boxes_lo[rest], c_lo[keep]])
        boxes_hi = torch.cat([boxes_hi[rest], c_hi[keep]])
        ub = torch.cat([ub[rest], c_ub[keep]])
        coef = torch.cat([coef[rest], c_coef[keep]])
        pre = [(torch.cat([lo_k[rest], clo[keep]]), torch.cat([hi_k[rest], chi[keep]]))
               for (lo_k, hi_k), (clo, chi) in zip(pre, child.pre, strict=True)]
    seconds = time.perf_counter() - start
    if not boxes_lo.shape[0]:
        return BabResult("proved", bound=leaf_max, best_value=best_v, boxes=count,
                         seconds=seconds)
    return BabResult("unknown", float(ub.max()), best_v, open_lo=boxes_lo.numpy(), open_hi=boxes_hi.numpy(),
                     boxes=count, seconds=seconds)


def _worst_vertex(coef: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The corner of each box maximising its linear upper bound (often near the true maximum)."""
    return torch.where(coef >= 0, hi, lo)
