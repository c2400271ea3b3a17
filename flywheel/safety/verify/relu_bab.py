"""ReLU-splitting branch and bound (β-CROWN-lite) over the query's whole box, with a concrete search.

A *subdomain* is the query's box with some unstable ReLUs fixed: active (pre-activation ``≥ 0``) or
inactive (``≤ 0``). Its bound comes from :func:`~flywheel.safety.verify.bounds.crown` with the splits
(the fixed units become linear, and every later layer's pre-activation bounds are recomputed through them),
then :func:`~flywheel.safety.verify.alpha.optimise` (α slopes and β multipliers of the split constraints).
Each round takes the ``batch`` open subdomains with the largest bounds, splits each on its unstable ReLU
with the largest BaBSR-style score (the relaxation's cost to the bound), bounds all children in one
batched pass, drops the proved ones, and evaluates the network at each child's worst vertex of its linear
bound. The two children of a split cover the parent, so the query is proved when no subdomain is open.

Input splitting (:mod:`~flywheel.safety.verify.bab`) wins when the input is low-dimensional; this wins when
the input is wide and the ReLUs are few and decisive. :mod:`~flywheel.safety.verify.engine` picks.

Example:
    >>> from flywheel.safety.verify.network import Act, Affine, Network
    >>> net = Network([Affine(np.array([[1.0], [-1.0]]), np.zeros(2)), Act("relu", 2),
    ...                Affine(np.array([[1.0, 1.0]]), np.zeros(1))])          # |x| ≤ 1.01 on [-1, 1]
    >>> query = Query(net, np.array([-1.0]), np.array([1.0]), np.array([1.0]), -1.01)
    >>> relu_branch_and_bound(query, time_limit=5).status
    'proved'
"""

from __future__ import annotations

import time

import numpy as np
import torch

from flywheel.safety.verify.alpha import Optimised, optimise
from flywheel.safety.verify.bab import BabResult, attack
from flywheel.safety.verify.bounds import DTYPE, TorchNet, crown
from flywheel.safety.verify.query import Query

METHOD = "relu-branch-and-bound"


def _bound(tn: TorchNet, lo: torch.Tensor, hi: torch.Tensor, c: torch.Tensor, d: float,
           parent: list[tuple[torch.Tensor, torch.Tensor]] | None, signs: list[torch.Tensor],
           alphas: list[torch.Tensor] | None, steps: int) -> tuple[Optimised, list, torch.Tensor]:
    batch = signs[0].shape[0] if signs else 1
    box_lo, box_hi = lo.expand(batch, -1), hi.expand(batch, -1)
    first = crown(tn, box_lo, box_hi, c[None], torch.tensor([d], dtype=DTYPE), parent=parent, splits=signs)
    result = optimise(tn, box_lo, box_hi, c, d, first.pre, signs=signs, alphas=alphas, steps=steps)
    result.upper = torch.minimum(result.upper, first.upper[:, 0])
    return result, first.pre, first.upper[:, 0]


def _choose(scores: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per subdomain: the layer and unit with the largest score, and whether any unit is left to split."""
    widths = [s.shape[1] for s in scores]
    flat = torch.cat(scores, dim=1)
    best, where = flat.max(dim=1)
    offsets = torch.tensor(np.cumsum([0, *widths[:-1]]))
    layer = torch.searchsorted(offsets, where, right=True) - 1
    return layer, where - offsets[layer], best > 0


def relu_branch_and_bound(query: Query, *, time_limit: float, batch: int = 32, steps: int = 20,
                          child_steps: int = 8, max_domains: int = 50_000, seed: int = 0) -> BabResult:
    """Prove ``query`` by splitting ReLUs, or find a violation, within ``time_limit`` seconds.

    Args:
        query: the query.
        time_limit: wall-clock seconds.
        batch: subdomains split per round (each gives two children).
        steps: α-CROWN steps on the whole box.
        child_steps: α/β steps per child (warm-started from the parent's slopes).
        max_domains: stop (``unknown``) when this many subdomains are open.
        seed: for the attack's random samples.

    Returns:
        a :class:`~flywheel.safety.verify.bab.BabResult` (no open boxes: what is left is the whole box).
    """
    start = time.perf_counter()
    tn = TorchNet(query.network)
    c = torch.as_tensor(query.c, dtype=DTYPE)
    d = float(query.d)
    lo = torch.as_tensor(query.lo, dtype=DTYPE)[None]
    hi = torch.as_tensor(query.hi, dtype=DTYPE)[None]
    widths = [act.count for act in tn.acts]
    signs = [torch.zeros(1, n, dtype=torch.int8) for n in widths]
    root, pre, plain = _bound(tn, lo, hi, c, d, None, signs, None, steps)
    bound = float(root.upper[0])
    if bound <= 0:
        return BabResult("proved", bound, -np.inf, boxes=1, seconds=time.perf_counter() - start,
                         method="crown" if float(plain[0]) <= 0 else "alpha-crown")
    vertex = torch.where(root.coef >= 0, hi, lo).numpy()
    best_v, best_x = attack(query, seed=seed, starts=vertex, tn=tn)
    if best_v > 0:
        return BabResult("violated", bound, best_v, best_x, boxes=1, seconds=time.perf_counter() - start,
                         method=METHOD)
    ub, alphas, scores = root.upper, root.alphas, root.scores
    count = 1
    leaf_max = -np.inf
    while ub.numel():
        if time.perf_counter() - start > time_limit or ub.numel() >= max_domains:
            break
        order = torch.argsort(ub, descending=True)
        take, rest = order[:batch], order[batch:]
        layer, unit, splittable = _choose([s[take] for s in scores])
        if not bool(splittable.any()):
            break  # nothing left to split in the worst subdomains: only Marabou can go on
        take, layer, unit = take[splittable], layer[splittable], unit[splittable]
        rest = torch.cat([rest, order[:batch][~splittable]])
        n = take.numel()
        rows = torch.arange(n)
        child_signs = []
        for k, s in enumerate(signs):
            both = torch.cat([s[take], s[take]])
            mine = layer == k
            both[rows[mine], unit[mine]] = 1
            both[n + rows[mine], unit[mine]] = -1
            child_signs.append(both)
        parent = [(torch.cat([p_lo[take]] * 2), torch.cat([p_hi[take]] * 2)) for p_lo, p_hi in pre]
        warm = [torch.cat([a[take]] * 2) for a in alphas]
        child, child_pre, _ = _bound(tn, lo, hi, c, d, parent, child_signs, warm, child_steps)
        count += 2 * n
        probes = torch.where(child.coef >= 0, hi, lo)
        values = tn(probes) @ c + d
        top = int(torch.argmax(values))
        if float(values[top]) > best_v:
            best_v, best_x = float(values[top]), probes[top].numpy().copy()
        if best_v > 0:
            return BabResult("violated", float(ub.max()), best_v, best_x, boxes=count,
                             seconds=time.perf_counter() - start, found_by="branch-and-bound", method=METHOD)
        keep = child.upper > 0
        if (~keep).any():
            leaf_max = max(leaf_max, float(child.upper[~keep].max()))
        ub = torch.cat([ub[rest], child.upper[keep]])
        signs = [torch.cat([s[rest], cs[keep]]) for s, cs in zip(signs, child_signs, strict=True)]
        pre = [(torch.cat([p_lo[rest], q_lo[keep]]), torch.cat([p_hi[rest], q_hi[keep]]))
               for (p_lo, p_hi), (q_lo, q_hi) in zip(pre, child_pre, strict=True)]
        alphas = [torch.cat([a[rest], b[keep]]) for a, b in zip(alphas, child.alphas, strict=True)]
        scores = [torch.cat([a[rest], b[keep]]) for a, b in zip(scores, child.scores, strict=True)]
    seconds = time.perf_counter() - start
    if not ub.numel():
        return BabResult("proved", bound=leaf_max, best_value=best_v, boxes=count, seconds=seconds, method=METHOD)
    return BabResult("unknown", float(ub.max()), best_v, boxes=count, seconds=seconds, method=METHOD)
