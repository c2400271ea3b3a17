"""α-CROWN with β terms: a query's linear bound, tightened by optimising its relaxation per subdomain.

:func:`~flywheel.safety.verify.bounds.crown` relaxes an unstable ReLU from below by ``0`` or ``x``; any slope
``α ∈ [0, 1]`` is as sound (``α·x ≤ relu(x)`` for every ``x``), and the best one depends on the query. Given
the pre-activation bounds of a batch of subdomains, :func:`optimise` minimises the upper bound of
``c·f(x) + d`` over the lower slopes of every unstable ReLU (projected Adam, torch autograd).

For a subdomain of ReLU-splitting branch and bound (split constraints ``s_j·z_j(x) ≥ 0``, ``s_j = ±1``),
the constraints also enter the bound as Lagrangian terms (β-CROWN): for ``β_j ≥ 0`` and every ``x``
satisfying them, ``g(x) ≤ g(x) + Σ β_j s_j z_j(x)``, so the relaxed maximum of the right side over the box
bounds ``g`` on the subdomain; the β are optimised with the α.

Every iterate is a sound bound (α is projected to ``[0, 1]``, β to ``≥ 0``, all in float64 and widened),
so the smallest bound seen per subdomain is returned.

Example:
    >>> from flywheel.safety.verify.network import Act, Affine, Network
    >>> from flywheel.safety.verify.bounds import TorchNet, crown
    >>> net = Network([Affine(np.array([[1.0], [-1.0]]), np.zeros(2)), Act("relu", 2),
    ...                Affine(np.array([[-1.0, -1.0]]), np.zeros(1))])          # -|x|
    >>> tn, lo, hi = TorchNet(net), torch.tensor([[-1.0]]), torch.tensor([[2.0]])
    >>> pre = crown(tn, lo, hi, torch.tensor([[-1.0]])).pre
    >>> float(optimise(tn, lo, hi, torch.tensor([-1.0]), 0.0, pre).upper[0]) < 1.0   # CROWN alone: 1.33
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flywheel.safety.verify.bounds import DTYPE, SLACK, TorchNet, relaxation


@dataclass
class Optimised:
    """What :func:`optimise` returns for ``B`` subdomains.

    Attributes:
        upper: ``(B,)`` sound upper bounds of ``c·f(x) + d`` on each subdomain.
        coef: ``(B, n_in)`` input coefficients of the best linear bound (its worst vertex is a good probe).
        alphas: per activation layer ``(B, count)``, the best lower slopes (to warm-start children).
        scores: per activation layer ``(B, count)``, how much each unstable ReLU's relaxation costs the
            bound (BaBSR-style: the positive coefficient on its output times its upper line's intercept).
    """

    upper: torch.Tensor
    coef: torch.Tensor
    alphas: list[torch.Tensor]
    scores: list[torch.Tensor]


class _Adam:
    """Adam on plain tensors (``torch.optim`` costs seconds to import; this costs nothing)."""

    def __init__(self, params: list[tuple[torch.Tensor, float]], betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.params = params
        self.b1, self.b2 = betas
        self.m = [torch.zeros_like(p) for p, _ in params]
        self.v = [torch.zeros_like(p) for p, _ in params]
        self.t = 0

    def step(self, grads: tuple[torch.Tensor | None, ...]) -> None:
        self.t += 1
        for (p, lr), g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            if g is None:
                continue
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            m_hat = m / (1 - self.b1**self.t)
            v_hat = v / (1 - self.b2**self.t)
            p.sub_(lr * m_hat / (v_hat.sqrt() + 1e-8))


def _backward(tn: TorchNet, relax: list[tuple[torch.Tensor, ...]], unstable: list[torch.Tensor],
              alphas: list[torch.Tensor], betas: list[torch.Tensor] | None, signs: list[torch.Tensor] | None,
              c: torch.Tensor, d: float, lo: torch.Tensor, hi: torch.Tensor,
              ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The upper bound of ``c·f(x) + d`` (and the β terms) over each box; also each layer's coefficients."""
    batch = lo.shape[0]
    lam = c.expand(batch, -1)
    const = torch.full((batch,), float(d), dtype=DTYPE)
    top = len(tn.weights) - 1
    post: list[torch.Tensor] = [torch.empty(0)] * len(tn.acts)
    for i in range(top, -1, -1):
        if i < top and betas is not None and signs is not None and signs[i].shape[1]:
            n = signs[i].shape[1]
            lam = torch.cat([lam[:, :n] + betas[i] * signs[i], lam[:, n:]], dim=1)
        const = const + lam @ tn.biases[i]
        lam = lam @ tn.weights[i]
        if i == 0:
            break
        a_l, b_l, a_u, b_u = relax[i - 1]
        n = tn.acts[i - 1].count
        head = lam[:, :n]
        post[i - 1] = head
        if tn.acts[i - 1].kind == "relu":
            a_l = torch.where(unstable[i - 1], alphas[i - 1], a_l)
        pos, neg = head.clamp(min=0), head.clamp(max=0)
        const = const + (pos * b_u).sum(-1) + (neg * b_l).sum(-1)
        lam = torch.cat([pos * a_u + neg * a_l, lam[:, n:]], dim=1)
    center, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    upper = const + (lam * center).sum(-1) + (lam.abs() * radius).sum(-1)
    return upper, lam, post


def optimise(tn: TorchNet, lo: torch.Tensor, hi: torch.Tensor, c: torch.Tensor, d: float,
             pre: list[tuple[torch.Tensor, torch.Tensor]], *, signs: list[torch.Tensor] | None = None,
             alphas: list[torch.Tensor] | None = None, steps: int = 20, lr: float = 0.2,
             beta_lr: float = 0.05) -> Optimised:
    """Minimise the upper bound of ``c·f(x) + d`` over the ReLU lower slopes (and β, when split).

    Args:
        tn: the network's tensors.
        lo: ``(B, n_in)`` box lower corners.
        hi: ``(B, n_in)`` box upper corners.
        c: ``(n_out,)`` the query's row.
        d: its constant.
        pre: per activation layer, ``(lower, upper)`` pre-activation bounds ``(B, width)`` valid on each
            subdomain (from :func:`~flywheel.safety.verify.bounds.crown`, with its ``splits``).
        signs: per activation layer ``(B, count)`` split constraints (``±1``, ``0`` free), for the β terms.
        alphas: warm start (e.g. the parent's best slopes); default CROWN's choice.
        steps: gradient steps (0: CROWN's slopes, evaluated once).
        lr: Adam step for α.
        beta_lr: Adam step for β.
    """
    lo, hi, c = lo.to(DTYPE), hi.to(DTYPE), c.to(DTYPE)
    relax = [relaxation(act.kind, p_lo[:, : act.count], p_hi[:, : act.count])
             for act, (p_lo, p_hi) in zip(tn.acts, pre, strict=True)]
    unstable = [(p_lo[:, : act.count] < 0) & (p_hi[:, : act.count] > 0)
                for act, (p_lo, p_hi) in zip(tn.acts, pre, strict=True)]
    start = alphas if alphas is not None else [r[0] for r in relax]
    alpha_params = [a.detach().clone().clamp(0, 1).requires_grad_(steps > 0) for a in start]
    split = signs is not None and any(bool(s.any()) for s in signs)
    beta_params = ([torch.zeros_like(s, dtype=DTYPE).requires_grad_(steps > 0) for s in signs]  # type: ignore[union-attr]
                   if split else None)
    signs_f = [s.to(DTYPE) for s in signs] if split else None  # type: ignore[union-attr]
    params = [(a, lr) for a in alpha_params] + [(b, beta_lr) for b in beta_params or []]
    opt = _Adam(params) if steps > 0 else None
    best = torch.full((lo.shape[0],), np.inf, dtype=DTYPE)
    best_alpha = [a.detach().clone() for a in alpha_params]
    best_coef = torch.zeros_like(lo)
    best_post: list[torch.Tensor] = []
    for step in range(steps + 1):
        with torch.set_grad_enabled(step < steps):
            upper, coef, post = _backward(tn, relax, unstable, alpha_params, beta_params, signs_f, c, d, lo, hi)
        with torch.no_grad():
            value = upper.detach() + SLACK * (1.0 + upper.detach().abs())
            better = value < best
            best = torch.where(better, value, best)
            best_coef = torch.where(better[:, None], coef.detach(), best_coef)
            for k, a in enumerate(alpha_params):
                best_alpha[k] = torch.where(better[:, None], a.detach(), best_alpha[k])
            if not best_post:
                best_post = [p.detach().clone() for p in post]
            else:
                best_post = [torch.where(better[:, None], p.detach(), q) for p, q in zip(post, best_post, strict=True)]
        if step == steps or opt is None or not upper.requires_grad:
            break  # done, or nothing to optimise (no ReLU, no split)
        grads = torch.autograd.grad(upper.sum(), [p for p, _ in params], allow_unused=True)
        with torch.no_grad():
            opt.step(grads)
            for a in alpha_params:
                a.clamp_(0, 1)
            for b in beta_params or []:
                b.clamp_(min=0)
    scores = []
    for (_, _, _, b_u), mask, lam in zip(relax, unstable, best_post, strict=True):
        scores.append(torch.where(mask, lam.clamp(min=0) * b_u, torch.zeros_like(b_u)))
    return Optimised(upper=best, coef=best_coef, alphas=best_alpha, scores=scores)
