"""Safety properties declared in YAML, validated before any solving, and turned into queries.

A spec file::

    properties:
      - name: actions-in-limits
        kind: output_bounds
        box: {low: [-1, -1], high: [1, 1]}         # or {dataset: data/look-at, feature: observation.state,
                                                   #     widen: 0.1}  (the observed range, ±10 % of it)
        actions: {low: [-0.8], high: [0.8]}         # null on a side: no limit there
      - name: joints-stay-in-limits
        kind: horizon
        steps: 10
        dt: 0.02
        start: {low: [-0.2], high: [0.2]}           # the joint state q0
        joint_limits: {low: [-0.5], high: [0.5]}
        observation: {state_matrix: [[1], [0]], offset: [0, 0.3]}   # obs = M q + offset (target fixed)
        action_clip: {low: [-1], high: [1]}        # q' = q + dt · clip(a[action_indices], low, high)
      - name: smooth
        kind: robustness
        epsilon: 0.01
        delta: 0.05
        points: [[0.1, 0.2]]                       # or box: {...}

Every property is ``required`` for promotion unless it says ``required: false``. :func:`queries` turns a
property into one-sided queries ``c·f(x) + d ≤ 0`` (two per bounded action, per joint and step, …); the
checks that need the network (action indices, widths) raise :class:`~flywheel.errors.InvalidInput` naming
the field, before solving.

Example:
    >>> spec = Spec.model_validate({"properties": [{"name": "p", "kind": "output_bounds",
    ...     "box": {"low": [0], "high": [1]}, "actions": {"low": [-1], "high": [1]}}]})
    >>> spec.properties[0].kind
    'output_bounds'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flywheel.errors import InvalidInput
from flywheel.safety.verify.derived import twin, unroll
from flywheel.safety.verify.network import Network
from flywheel.safety.verify.query import Query


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Box(_Model):
    """An axis-aligned box: ``low``/``high`` given, or a dataset feature's observed range, widened.

    Attributes:
        low: lower corner.
        high: upper corner.
        dataset: a LeRobot dataset folder (instead of low/high).
        feature: the dataset feature holding the observation.
        widen: fraction of the observed range added on each side.
    """

    low: list[float] | None = None
    high: list[float] | None = None
    dataset: Path | None = None
    feature: str = "observation.state"
    widen: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _shape(self) -> Box:
        if self.dataset is None:
            if self.low is None or self.high is None:
                raise ValueError("give low and high, or a dataset")
            if not self.low or len(self.low) != len(self.high):
                raise ValueError(f"low has {len(self.low)} values and high {len(self.high)}; they must match")
            bad = [i for i, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)) if not lo <= hi]
            if bad:
                raise ValueError(f"low > high (an empty or inverted box) at index {bad}")
        return self

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The box as two float64 arrays (reads the dataset's statistics when it comes from one)."""
        if self.dataset is None:
            lo, hi = np.asarray(self.low, np.float64), np.asarray(self.high, np.float64)
        else:
            from flywheel.datasets.reader import DatasetReader
            from flywheel.datasets.stats import dataset_stats

            stats = dataset_stats(DatasetReader(self.dataset))
            if self.feature not in stats:
                raise InvalidInput(f"the dataset has no feature {self.feature!r}", field="box.feature",
                                   allowed=sorted(stats))
            lo = np.asarray(stats[self.feature]["min"], np.float64).ravel()
            hi = np.asarray(stats[self.feature]["max"], np.float64).ravel()
        span = hi - lo
        return lo - self.widen * span, hi + self.widen * span


class Limits(_Model):
    """Per-component limits; ``None`` (YAML ``null``) leaves that side unlimited."""

    low: list[float | None]
    high: list[float | None]

    @model_validator(mode="after")
    def _shape(self) -> Limits:
        if len(self.low) != len(self.high):
            raise ValueError(f"low has {len(self.low)} values and high {len(self.high)}; they must match")
        for i, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)):
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"low > high at index {i}")
        return self


class OutputBounds(_Model):
    """Every observation in ``box`` keeps every action component within ``actions``."""

    kind: Literal["output_bounds"]
    name: str = Field(min_length=1, max_length=100)
    required: bool = True
    box: Box
    actions: Limits


class Observation(_Model):
    """``obs = state_matrix @ q + offset`` (the target part of the observation sits in ``offset``)."""

    state_matrix: list[list[float]]
    offset: list[float]


class Horizon(_Model):
    """From any joint state in ``start``, ``steps`` closed-loop steps keep every joint within its limits."""

    kind: Literal["horizon"]
    name: str = Field(min_length=1, max_length=100)
    required: bool = True
    steps: int = Field(ge=1, le=200)
    dt: float = Field(gt=0)
    start: Box
    joint_limits: Limits
    observation: Observation
    action_indices: list[int] | None = None
    action_clip: Limits | None = None


class Robustness(_Model):
    """A perturbation of at most ``epsilon`` (∞-norm) changes each action by at most ``delta``."""

    kind: Literal["robustness"]
    name: str = Field(min_length=1, max_length=100)
    required: bool = True
    epsilon: float = Field(gt=0)
    delta: float = Field(gt=0)
    points: list[list[float]] | None = None
    box: Box | None = None
    actions: list[int] | None = None

    @model_validator(mode="after")
    def _where(self) -> Robustness:
        if (self.points is None) == (self.box is None):
            raise ValueError("give exactly one of points or box")
        if self.points is not None and not self.points:
            raise ValueError("points is empty")
        return self


Property = Annotated[OutputBounds | Horizon | Robustness, Field(discriminator="kind")]


class Spec(_Model):
    """A safety spec: named properties."""

    properties: list[Property] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Spec:
        names = [p.name for p in self.properties]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"property names repeat: {dupes}")
        return self

    @property
    def required(self) -> list[str]:
        """Names of the properties a policy must prove to be promoted."""
        return [p.name for p in self.properties if p.required]


def load_spec(path: Path) -> Spec:
    """Read and validate a YAML spec.

    Raises:
        InvalidInput: not YAML, or invalid (the field named, e.g. ``properties.0.box``).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist", field="spec")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not YAML: {exc}", field="spec") from None
    return parse_spec(data)


def parse_spec(data: object) -> Spec:
    """Validate a spec given as plain data (raises :class:`InvalidInput` naming the first bad field)."""
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "spec"
        raise InvalidInput(err["msg"].removeprefix("Value error, "), field=f"spec.{field}") from None


# --- checks against the network and queries ---------------------------------------------------------------


def _dim(field: str, values: object, want: int, what: str) -> None:
    got = len(values)  # type: ignore[arg-type]
    if got != want:
        raise InvalidInput(f"has {got} values but the {what} has {want}", field=field, allowed=want)


def queries(prop: Property, index: int, policy: Network) -> list[Query]:
    """The one-sided queries of ``prop`` on ``policy`` (``index``: its position, for field names).

    Raises:
        InvalidInput: a width or an action index that does not match the policy (field named).
    """
    where = f"spec.properties.{index}"
    if isinstance(prop, OutputBounds):
        return _output_queries(prop, where, policy)
    if isinstance(prop, Horizon):
        return _horizon_queries(prop, where, policy)
    return _robustness_queries(prop, where, policy)


def _limit_queries(net: Network, lo: np.ndarray, hi: np.ndarray, limits: Limits, rows: list[int],
                   label: str, tags: list[dict]) -> list[Query]:
    out = []
    for k, (row, tag) in enumerate(zip(rows, tags, strict=True)):
        c = np.zeros(net.out_dim)
        c[row] = 1.0
        if limits.high[k] is not None:
            out.append(Query(net, lo, hi, c, -float(limits.high[k]), f"{label(tag)} <= {limits.high[k]:g}",  # type: ignore[operator]
                             tag={**tag, "side": "high", "limit": float(limits.high[k])}))  # type: ignore[arg-type]
        if limits.low[k] is not None:
            out.append(Query(net, lo, hi, -c, float(limits.low[k]), f"{label(tag)} >= {limits.low[k]:g}",  # type: ignore[operator]
                             tag={**tag, "side": "low", "limit": float(limits.low[k])}))  # type: ignore[arg-type]
    return out


def _output_queries(prop: OutputBounds, where: str, policy: Network) -> list[Query]:
    lo, hi = prop.box.bounds()
    _dim(f"{where}.box", lo, policy.in_dim, "policy's observation")
    _dim(f"{where}.actions.low", prop.actions.low, policy.out_dim, "policy's action")
    tags = [{"kind": "output_bounds", "action": j} for j in range(policy.out_dim)]
    return _limit_queries(policy, lo, hi, prop.actions, list(range(policy.out_dim)),
                          lambda t: f"action[{t['action']}]", tags)  # type: ignore[arg-type]


def horizon_network(prop: Horizon, where: str, policy: Network) -> Network:
    """The policy unrolled with the property's dynamics (validated against the policy)."""
    matrix = np.asarray(prop.observation.state_matrix, np.float64)
    nq = len(prop.start.low or [])
    if matrix.ndim != 2 or matrix.shape != (policy.in_dim, nq):
        raise InvalidInput(f"has shape {matrix.shape}", field=f"{where}.observation.state_matrix",
                           allowed=f"({policy.in_dim}, {nq}): observation width × joints")
    _dim(f"{where}.observation.offset", prop.observation.offset, policy.in_dim, "policy's observation")
    _dim(f"{where}.joint_limits.low", prop.joint_limits.low, nq, "start box")
    indices = prop.action_indices if prop.action_indices is not None else list(range(nq))
    _dim(f"{where}.action_indices", indices, nq, "start box")
    bad = [i for i in indices if not 0 <= i < policy.out_dim]
    if bad:
        raise InvalidInput(f"names actions {bad} that do not exist", field=f"{where}.action_indices",
                           allowed=f"0..{policy.out_dim - 1}")
    clip_lo = clip_hi = None
    if prop.action_clip is not None:
        _dim(f"{where}.action_clip.low", prop.action_clip.low, nq, "start box")
        clip_lo = np.array([-np.inf if v is None else v for v in prop.action_clip.low])
        clip_hi = np.array([np.inf if v is None else v for v in prop.action_clip.high])
    return unroll(policy, steps=prop.steps, dt=prop.dt, state_matrix=matrix,
                  obs_offset=np.asarray(prop.observation.offset, np.float64), action_indices=indices,
                  clip_low=clip_lo, clip_high=clip_hi)


def _horizon_queries(prop: Horizon, where: str, policy: Network) -> list[Query]:
    if prop.start.dataset is not None:
        raise InvalidInput("a horizon start box needs low and high", field=f"{where}.start")
    net = horizon_network(prop, where, policy)
    lo, hi = prop.start.bounds()
    nq = lo.size
    limits = Limits(low=prop.joint_limits.low * prop.steps, high=prop.joint_limits.high * prop.steps)
    tags = [{"kind": "horizon", "step": t + 1, "joint": j} for t in range(prop.steps) for j in range(nq)]
    return _limit_queries(net, lo, hi, limits, list(range(prop.steps * nq)),
                          lambda t: f"q{t['joint']}[t={t['step']}]", tags)  # type: ignore[arg-type]


def _robustness_queries(prop: Robustness, where: str, policy: Network) -> list[Query]:
    actions = prop.actions if prop.actions is not None else list(range(policy.out_dim))
    bad = [j for j in actions if not 0 <= j < policy.out_dim]
    if bad:
        raise InvalidInput(f"names actions {bad} that do not exist", field=f"{where}.actions",
                           allowed=f"0..{policy.out_dim - 1}")
    eps, delta = prop.epsilon, prop.delta
    out: list[Query] = []
    if prop.points is not None:
        for p, point in enumerate(prop.points):
            _dim(f"{where}.points.{p}", point, policy.in_dim, "policy's observation")
            x0 = np.asarray(point, np.float64)
            y0 = policy(x0[None])[0]
            limits = Limits(low=[float(y0[j] - delta) for j in actions], high=[float(y0[j] + delta) for j in actions])
            tags = [{"kind": "robustness", "action": j, "point": p} for j in actions]
            out += _limit_queries(policy, x0 - eps, x0 + eps, limits, actions,
                                  lambda t: f"action[{t['action']}] near point {t['point']}", tags)  # type: ignore[arg-type]
        return out
    lo, hi = prop.box.bounds()  # type: ignore[union-attr]
    _dim(f"{where}.box", lo, policy.in_dim, "policy's observation")
    net = twin(policy)
    n = policy.in_dim
    tlo = np.concatenate([lo, -eps * np.ones(n)])
    thi = np.concatenate([hi, eps * np.ones(n)])
    limits = Limits(low=[-delta] * len(actions), high=[delta] * len(actions))
    tags = [{"kind": "robustness", "action": j} for j in actions]
    return _limit_queries(net, tlo, thi, limits, actions, lambda t: f"Δaction[{t['action']}]", tags)  # type: ignore[arg-type]
