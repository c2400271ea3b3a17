"""Soundness of α-CROWN and of split subdomains' bounds (with β terms), on many seeded random networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flywheel.safety.verify.alpha import optimise
from flywheel.safety.verify.bounds import TorchNet, crown

from .test_verify_bounds import random_net


@pytest.mark.parametrize("kind", ["relu", "tanh"])
def test_alpha_bounds_contain_sampled_outputs_and_never_loosen_crown(kind: str) -> None:
    rng = np.random.default_rng(21)
    tighter = 0
    for trial in range(40):
        net = random_net(rng, kind, clip=trial % 3 == 0)
        tn = TorchNet(net)
        center = rng.uniform(-1, 1, net.in_dim)
        radius = rng.uniform(0.05, 1.5, net.in_dim)
        lo, hi = center - radius, center + radius
        x = np.vstack([rng.uniform(lo, hi, size=(3000, net.in_dim)),
                       lo + rng.integers(0, 2, size=(200, net.in_dim)) * (hi - lo)])
        y = net(x)
        c = rng.normal(size=net.out_dim)
        box_lo, box_hi = torch.tensor(lo)[None], torch.tensor(hi)[None]
        plain = crown(tn, box_lo, box_hi, torch.tensor(c)[None], torch.tensor([0.3]))
        best = optimise(tn, box_lo, box_hi, torch.tensor(c), 0.3, plain.pre, steps=15)
        assert (y @ c + 0.3 <= float(best.upper[0]) + 1e-12).all(), trial
        assert float(best.upper[0]) <= float(plain.upper[0]) + 1e-9, trial
        tighter += float(best.upper[0]) < float(plain.upper[0]) - 1e-6
    if kind == "relu":
        assert tighter > 8  # the optimisation does something


def _pre_activations(net: object, x: np.ndarray) -> list[np.ndarray]:
    """Each activation layer's input on a batch."""
    from flywheel.safety.verify.network import Affine

    out, z = [], x
    for layer in net.layers:  # type: ignore[attr-defined]
        if isinstance(layer, Affine):
            z = z @ layer.weight.T + layer.bias
        else:
            out.append(z[:, : layer.count].copy())
            z = z.copy()
            z[:, : layer.count] = np.maximum(z[:, : layer.count], 0)
    return out


def test_split_subdomain_bounds_hold_on_the_points_that_satisfy_the_splits() -> None:
    rng = np.random.default_rng(5)
    checked = 0
    for trial in range(40):
        net = random_net(rng, "relu", clip=trial % 4 == 0)
        tn = TorchNet(net)
        lo, hi = -np.ones(net.in_dim), np.ones(net.in_dim)
        x = rng.uniform(lo, hi, size=(6000, net.in_dim))
        pre = _pre_activations(net, x)
        # random split constraints on a few units (several subdomains in one batch)
        signs = [torch.zeros(4, p.shape[1], dtype=torch.int8) for p in pre]
        for b in range(4):
            for _ in range(int(rng.integers(1, 4))):
                k = int(rng.integers(len(pre)))
                j = int(rng.integers(pre[k].shape[1]))
                signs[k][b, j] = int(rng.choice([-1, 1]))
        c = rng.normal(size=net.out_dim)
        box_lo, box_hi = torch.tensor(lo).expand(4, -1), torch.tensor(hi).expand(4, -1)
        bounds = crown(tn, box_lo, box_hi, torch.tensor(c)[None], splits=signs)
        best = optimise(tn, box_lo, box_hi, torch.tensor(c), 0.0, bounds.pre, signs=signs, steps=15)
        values = net(x) @ c
        for b in range(4):
            inside = np.ones(len(x), bool)
            for k, p in enumerate(pre):
                s = signs[k][b].numpy()
                inside &= ((p * s) >= 0)[:, s != 0].all(1)
            checked += int(inside.sum())
            assert (values[inside] <= float(bounds.upper[b, 0]) + 1e-12).all(), trial
            assert (values[inside] <= float(best.upper[b]) + 1e-12).all(), trial
            for k, p in enumerate(pre):  # the subdomain's pre-activation bounds hold there too
                lo_k, hi_k = bounds.pre[k][0][b].numpy(), bounds.pre[k][1][b].numpy()
                assert (p[inside] >= lo_k[: p.shape[1]] - 1e-9).all() and (p[inside] <= hi_k[: p.shape[1]] + 1e-9).all()
    assert checked > 10_000
