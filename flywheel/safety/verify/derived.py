"""Networks derived from a policy: unrolled with known dynamics (horizon safety), and its twin (robustness).

Both are ordinary :class:`Network` chains, so the bound pass, branch and bound and Marabou treat them like
the policy itself.

* :func:`unroll`: input the joint state ``q0``, output ``[q1, …, qH]`` where
  ``obs_t = M q_t + o``, ``a_t = π(obs_t)``, ``q_{t+1} = q_t + dt · clip(a_t[idx], lo, hi)``. The states are
  carried through the policy's layers as pass-through units; the clip is the exact ReLU lowering.
* :func:`twin`: input ``[x, e]``, output ``π(x + e) - π(x)``.

Example:
    >>> from flywheel.safety.verify.network import Affine, Network
    >>> policy = Network([Affine(-np.eye(1), np.zeros(1))])          # a = -obs
    >>> net = unroll(policy, steps=2, dt=0.5, state_matrix=np.eye(1), obs_offset=np.zeros(1),
    ...              action_indices=[0], clip_low=None, clip_high=None)
    >>> net(np.array([[1.0]])).round(3).tolist()
    [[0.5, 0.25]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flywheel.safety.verify.network import Act, Affine, Layer, Network, clip_layers


def _extend(layer: Layer, carry: int) -> Layer:
    """The layer acting on ``[its units, carry]``, passing the ``carry`` trailing units through."""
    if isinstance(layer, Act):
        return layer
    n_out, n_in = layer.weight.shape
    weight = np.zeros((n_out + carry, n_in + carry))
    weight[:n_out, :n_in] = layer.weight
    weight[n_out:, n_in:] = np.eye(carry)
    return Affine(weight, np.concatenate([layer.bias, np.zeros(carry)]))


def unroll(policy: Network, *, steps: int, dt: float, state_matrix: np.ndarray, obs_offset: np.ndarray,
           action_indices: Sequence[int], clip_low: np.ndarray | None, clip_high: np.ndarray | None) -> Network:
    """The policy in closed loop with ``q' = q + dt · clip(a[action_indices], lo, hi)`` for ``steps`` steps."""
    nq = state_matrix.shape[1]
    layers: list[Layer] = []
    select = np.zeros((nq, policy.out_dim))
    select[np.arange(nq), list(action_indices)] = 1.0
    clip: list[Layer] = [Affine(select, np.zeros(nq))]
    if clip_low is not None and clip_high is not None:
        clip = [Affine(select, np.zeros(nq)), *clip_layers(np.asarray(clip_low), np.asarray(clip_high))]
    for t in range(steps):
        carry = (t + 1) * nq  # [q0, …, q_t]; the current state is the last block
        first = policy.affines[0]  # normal form: the first layer is an Affine
        obs_w = np.zeros((policy.in_dim, carry))
        obs_w[:, -nq:] = state_matrix
        w0 = np.vstack([first.weight @ obs_w, np.eye(carry)])
        b0 = np.concatenate([first.weight @ obs_offset + first.bias, np.zeros(carry)])
        layers.append(Affine(w0, b0))
        layers.extend(_extend(layer, carry) for layer in policy.layers[1:])
        layers.extend(_extend(layer, carry) for layer in clip)
        # [u (nq), carry] -> [carry, q_t + dt·u]
        step = np.zeros((carry + nq, nq + carry))
        step[:carry, nq:] = np.eye(carry)
        step[carry:, :nq] = dt * np.eye(nq)
        step[carry:, -nq:] += np.eye(nq)
        layers.append(Affine(step, np.zeros(carry + nq)))
    total = (steps + 1) * nq
    layers.append(Affine(np.eye(total)[nq:], np.zeros(total - nq)))
    return Network(layers)


def _stack(a: Network, b: Network) -> list[Layer]:
    """Two networks of the same shape side by side: input ``[xa, xb]``, output ``[a(xa), b(xb)]``."""
    layers: list[Layer] = []
    perm: np.ndarray | None = None  # order of the previous activation's units
    for i, (la, lb) in enumerate(zip(a.layers, b.layers, strict=True)):
        if isinstance(la, Affine) and isinstance(lb, Affine):
            weight = np.zeros((la.out_dim + lb.out_dim, la.in_dim + lb.in_dim))
            weight[: la.out_dim, : la.in_dim] = la.weight
            weight[la.out_dim:, la.in_dim:] = lb.weight
            bias = np.concatenate([la.bias, lb.bias])
            if perm is not None:
                weight = weight[:, perm]  # columns follow the permuted activation layout
            layers.append(Affine(weight, bias))
            perm = None
        elif isinstance(la, Act) and isinstance(lb, Act) and la.kind == lb.kind:
            prev = layers[-1]
            na = a.layers[i - 1].out_dim  # type: ignore[union-attr]  # width of a's block
            nb = prev.out_dim - na  # type: ignore[union-attr]
            order = np.concatenate([np.arange(la.count), na + np.arange(lb.count),
                                    np.arange(la.count, na), na + np.arange(lb.count, nb)])
            layers[-1] = Affine(prev.weight[order], prev.bias[order])  # type: ignore[union-attr]
            layers.append(Act(la.kind, la.count + lb.count))
            perm = order
        else:  # pragma: no cover - callers stack a network with itself
            raise ValueError("networks of different shapes")
    return layers


def twin(policy: Network) -> Network:
    """``[x, e] -> π(x + e) - π(x)``.

    Example:
        >>> from flywheel.safety.verify.network import Affine, Network
        >>> t = twin(Network([Affine(np.array([[3.0]]), np.zeros(1))]))
        >>> t(np.array([[1.0, 0.5]])).tolist()
        [[1.5]]
    """
    n, m = policy.in_dim, policy.out_dim
    spread = np.block([[np.eye(n), np.zeros((n, n))], [np.eye(n), np.eye(n)]])
    diff = np.hstack([-np.eye(m), np.eye(m)])
    return Network([Affine(spread, np.zeros(2 * n)), *_stack(policy, policy), Affine(diff, np.zeros(m))])
