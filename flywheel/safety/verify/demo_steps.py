"""The demo's verification steps: prove the champion's safety spec, then refuse a deliberately unsafe policy.

``flywheel.demo.STEPS`` includes ``VERIFY_STEPS`` after the autoresearch steps:

1. :func:`verify_champion` takes the iteration the project's ``champion`` alias points at, reads its
   ``model.onnx`` asset from the blob store, writes a spec over the observation box its evaluation episodes
   occupy (their observed range, widened by 10 %), verifies it (bounds → branch and bound → Marabou, a short
   time limit per query), stores the certificates as an asset of the champion iteration (tagged
   ``certificate``), prints them and asks the safety gate (:func:`~flywheel.safety.verify.gate.require_proved`).
   A property that comes out ``unknown`` is printed as such, with the gate's refusal: nothing is faked.
2. :func:`refuse_unsafe_policy` builds an over-eager lane keeper (a small ReLU network whose steering gain is
   far too high and whose output is not clipped), verifies it over the same box against the task's action
   limits, prints the counterexample the engine replayed in onnxruntime and the gate refusing the policy.

What is verified of a discrete-action champion (DQN): its ONNX actor ends in ``ArgMax`` over Q-values, and the
chosen index is a row of ``DiscretizeAction``'s table, so every action it can take is one of finitely many
table rows (each checked against the action limits here, by enumeration). The verifier reads the network up
to the ``ArgMax`` (:func:`q_network_onnx`), and the spec is about that network: its Q-values stay within the
range any discounted return can have (``|Q| ≤ r_max / (1 − γ)``), and a perturbation of ±ε of an observation
moves each Q-value by at most δ (so the greedy choice can only change where two Q-values are within 2δ).
A continuous-action champion is verified against the action limits themselves.

The core (:func:`prove`, :func:`unsafe_policy`, :func:`q_network_onnx`, the spec builders) needs no database;
``tests/safety/verify/test_demo_steps.py`` runs it on a tiny self-made setup.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from flywheel.errors import Conflict, NotFound
from flywheel.safety.verify.certificate import Certificate, sha256_file

#: Seconds per query (the whole champion step stays within ~20 s on a quiet core).
TIME_LIMIT_PER_QUERY = 3.0
#: The observed range of the evaluation episodes, widened by this fraction of its span on each side.
WIDEN = 0.1
#: Robustness: an observation perturbation of ±EPSILON moves each output by at most DELTA.
EPSILON, DELTA = 0.01, 0.05
#: How many evaluation observations the robustness property is checked around.
ROBUSTNESS_POINTS = 3
#: The unsafe policy's steering gain on heading error and lateral offset (a sane one is well below 1).
UNSAFE_GAIN = 3.0
#: The unsafe policy's constant throttle.
UNSAFE_THROTTLE = 0.5
#: Track observation indices (``flywheel.envs.track.env``): heading error / π, lateral offset / half width.
HEADING, OFFSET = 1, 2
ENV_ID = "flywheel/Track-v0"


# --- the core: no database ---------------------------------------------------------------------------------


def q_network_onnx(data: bytes) -> bytes | None:
    """The network of a discrete-action actor up to its final ``ArgMax`` (output ``action`` = the Q-values).

    Returns ``None`` when the graph does not end in ``ArgMax`` (a continuous-action actor: verify it as is).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)
    graph = model.graph
    if not graph.node or graph.node[-1].op_type != "ArgMax":
        return None
    argmax = graph.node[-1]
    source, output = argmax.input[0], graph.output[0].name
    inferred = onnx.shape_inference.infer_shapes(model).graph.value_info
    width = next((int(v.type.tensor_type.shape.dim[-1].dim_value) for v in inferred if v.name == source), 0)
    graph.node.remove(argmax)
    graph.node.append(helper.make_node("Identity", [source], [output], name="q_values"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width or None]))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def observed_box(observations: np.ndarray, widen: float = WIDEN) -> tuple[list[float], list[float]]:
    """The observed range of ``observations`` ``(frames, n)``, widened by ``widen`` of its span on each side
    (rounded outwards to 1e-4, so the YAML spec holds exactly the box that was verified)."""
    lo, hi = observations.min(axis=0).astype(np.float64), observations.max(axis=0).astype(np.float64)
    span = hi - lo
    lo, hi = lo - widen * span, hi + widen * span
    return [math.floor(v * 1e4) / 1e4 for v in lo], [math.ceil(v * 1e4) / 1e4 for v in hi]


def robustness_points(observations: np.ndarray, count: int = ROBUSTNESS_POINTS) -> list[list[float]]:
    """``count`` observations spread over the recorded frames (first, …, last), as float32 values."""
    picks = np.unique(np.linspace(0, len(observations) - 1, count).round().astype(int))
    return [[float(v) for v in observations[i].astype(np.float32)] for i in picks]


def action_limits_property(low: list[float], high: list[float], action_low: list[float],
                           action_high: list[float], name: str = "actions-in-limits") -> dict[str, Any]:
    """Output bounds: every observation in ``[low, high]`` keeps every action within the action space."""
    return {"name": name, "kind": "output_bounds", "box": {"low": low, "high": high},
            "actions": {"low": action_low, "high": action_high}}


def champion_spec(low: list[float], high: list[float], points: list[list[float]], *, outputs: int,
                  q_bound: float | None, action_low: list[float], action_high: list[float]) -> dict[str, Any]:
    """The champion's spec (plain data, as the YAML is written).

    ``q_bound`` given (a discrete-action actor, verified up to its ArgMax): every Q-value within
    ``±q_bound``; otherwise every action within the action limits. Both: ±EPSILON moves each output ≤ DELTA.
    """
    if q_bound is not None:
        first = {"name": "q-values-bounded", "kind": "output_bounds", "box": {"low": low, "high": high},
                 "actions": {"low": [-q_bound] * outputs, "high": [q_bound] * outputs}}
    else:
        first = action_limits_property(low, high, action_low, action_high)
    smooth = {"name": "smooth", "kind": "robustness", "epsilon": EPSILON, "delta": DELTA, "points": points}
    return {"properties": [first, smooth]}


def prove(model: Path, spec_data: dict[str, Any], *, time_limit: float = TIME_LIMIT_PER_QUERY,
          spec_path: Path | None = None) -> tuple[list[Certificate], list[str]]:
    """Verify ``spec_data`` on ``model``; returns the certificates and the required property names.

    Writes the spec as YAML to ``spec_path`` when given (to reproduce with ``flywheel verify``).
    """
    from flywheel.safety.verify.engine import verify
    from flywheel.safety.verify.spec import parse_spec

    spec = parse_spec(spec_data)
    if spec_path is not None:
        spec_path.write_text(yaml.safe_dump(spec_data, sort_keys=False, default_flow_style=None, width=200))
    return verify(model, spec, time_limit_per_query=time_limit), spec.required


def gate(certificates: list[Certificate], required: list[str]) -> str | None:
    """The safety gate's verdict: ``None`` when it lets the model through, else its refusal message."""
    from flywheel.safety.verify.gate import require_proved

    sha = certificates[0].model_sha256 if certificates else None
    try:
        require_proved(certificates, required, model_sha256=sha)
    except Conflict as exc:
        return exc.message
    return None


def unsafe_policy(path: Path, obs_dim: int, *, gain: float = UNSAFE_GAIN, throttle: float = UNSAFE_THROTTLE) -> Path:
    """Write an over-eager lane keeper as ONNX: ``steer = −gain·(heading error + lateral offset)``, constant
    ``throttle``, with no clip to the action space. A ReLU network ``obs → 8 → 2`` (torch, exported)."""
    import torch
    from torch import nn

    net = nn.Sequential(nn.Linear(obs_dim, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        first, last = net[0], net[2]
        first.weight.zero_()
        first.bias.zero_()
        last.weight.zero_()
        # hidden units 0/1: relu(±heading error), 2/3: relu(±offset); relu(z) − relu(−z) = z
        for unit, (index, sign) in enumerate([(HEADING, 1), (HEADING, -1), (OFFSET, 1), (OFFSET, -1)]):
            first.weight[unit, index] = sign
            last.weight[0, unit] = -gain * sign
        last.bias.copy_(torch.tensor([0.0, throttle]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as in onnx_export: this exporter is exact
        torch.onnx.export(net.eval(), (torch.zeros(2, obs_dim),), str(path), dynamo=False, opset_version=17,
                          input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}})
    return path


def certificate_lines(certificates: list[Certificate]) -> list[str]:
    """The certificate, a few lines per property: result, method, time, bounds or counterexample."""
    lines = [f"model sha256 {certificates[0].model_sha256}" if certificates else "no certificates"]
    for cert in certificates:
        lines.append(f"{cert.property_name:<17} {cert.result.upper():<8} {len(cert.queries):>3} queries by "
                     f"{', '.join(cert.methods)} in {cert.seconds:.1f}s{_proved_range(cert)}")
        for q in cert.queries:
            if q.result == "refuted" and q.counterexample:
                ce = q.counterexample
                detail = ce.get("detail", {})
                lines.append(f"  counterexample to {q.name} (found by {ce['method']}), replayed in onnxruntime:")
                lines.append(f"    observation {_fmt(detail.get('observation', ce['input']))}")
                if "action" in detail:
                    lines.append(f"    action      {_fmt(detail['action'])}")
                lines.append(f"    measured {ce['measured']:.6g} against the limit {ce['limit']:.6g}: violated")
            elif q.result == "unknown":
                lines.append(f"  {q.name}: unknown ({q.note or 'time limit'})")
    return lines


def _proved_range(cert: Certificate) -> str:
    """For a proved output-bounds certificate, the sound range its bounds give (``limit ± bound``)."""
    if cert.result != "proved" or cert.property.get("kind") != "output_bounds":
        return ""
    upper, lower = [], []
    for q in cert.queries:
        match = re.fullmatch(r"action\[\d+\] (<=|>=) (\S+)", q.name)
        if match is None or q.bound is None:
            continue
        limit = float(match.group(2))
        (upper if match.group(1) == "<=" else lower).append(limit + q.bound if match.group(1) == "<=" else
                                                             limit - q.bound)
    if not upper or not lower:
        return ""
    return f"; sound bounds: every output within [{min(lower):.4g}, {max(upper):.4g}]"


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


# --- the demo steps ----------------------------------------------------------------------------------------


@dataclass
class Champion:
    """What the steps need of the champion iteration."""

    iteration_id: str
    experiment_id: str
    onnx: bytes
    onnx_sha256: str
    observations: np.ndarray
    config: dict[str, Any]


def _champion() -> Champion:
    from flywheel.blobs import get_blob_store
    from flywheel.datasets.reader import DatasetReader
    from flywheel.platform import access
    from flywheel.platform.aliases import get_alias
    from flywheel.platform.assets import list_assets
    from flywheel.platform.commands._identity import user_session

    with user_session() as (session, user):
        iteration = access.iteration(session, user, get_alias(session, user, "drive", "champion").iteration_id)
        assets = {a.name: a for a in list_assets(session, user, iteration_id=iteration.id)}
        if "model.onnx" not in assets:
            raise Conflict(f"the champion iteration {iteration.id} has no model.onnx asset")
        blobs = get_blob_store()
        onnx_asset = assets["model.onnx"]
        data = blobs.read_bytes(onnx_asset.blob_hash)
        config = (json.loads(blobs.read_bytes(assets["config.json"].blob_hash)) if "config.json" in assets
                  else dict(iteration.config_overrides or {}))
        roots = [Path(d.root_path) for d in iteration.output_evals]
        ids = (iteration.id, iteration.experiment_id, onnx_asset.blob_hash)
    frames = [ep.columns["observation.state"] for root in roots
              for ep in DatasetReader(root).iter_episodes(include_videos=False)]
    if not frames:
        raise Conflict(f"the champion iteration {ids[0]} has no evaluation episodes to take the observation box from")
    return Champion(ids[0], ids[1], data, ids[2], np.concatenate(frames).astype(np.float64), config)


def _action_space(config: dict[str, Any]) -> tuple[Any, np.ndarray | None]:
    """The task's continuous action space, and ``DiscretizeAction``'s table when the template discretises it."""
    import gymnasium as gym

    import flywheel.envs  # noqa: F401  (registers the tasks)
    from flywheel.envs.wrappers import DiscretizeAction

    env = gym.make(config.get("env_id", ENV_ID), **config.get("env_kwargs", {}))
    space = env.action_space
    table = None
    if "n_steer" in config:
        table = DiscretizeAction(env, int(config["n_steer"]), int(config.get("n_throttle", 3))).table
    env.close()
    return space, table


def verify_champion(demo: Any) -> None:
    """Verify the champion: prove its safety spec over the observations its evaluation saw; store the certificate."""
    from flywheel.envs.track.car import CarParams
    from flywheel.platform.assets import upload_asset
    from flywheel.platform.commands._identity import user_session
    from flywheel.platform.schemas import AssetCreate
    from flywheel.safety.verify.certificate import store_certificates

    try:
        champ = _champion()
    except NotFound:
        demo.note("the project has no champion (the search crowned none): nothing to verify")
        return
    folder = (demo.workspace / "verify").absolute()
    folder.mkdir(parents=True, exist_ok=True)
    space, table = _action_space(champ.config)
    low, high = observed_box(champ.observations)
    points = robustness_points(champ.observations)
    action_low, action_high = [float(v) for v in space.low], [float(v) for v in space.high]
    q_data = q_network_onnx(champ.onnx)
    demo.note(f"champion iteration {champ.iteration_id}: model.onnx sha256 {champ.onnx_sha256[:16]}…")
    demo.note(f"observation box: {len(champ.observations)} evaluation frames, observed range widened by "
              f"{WIDEN:.0%} ({len(low)} dimensions)")
    if q_data is not None:
        model = folder / "q_network.onnx"
        model.write_bytes(q_data)
        params = CarParams()
        gamma = float(champ.config.get("gamma", 0.99))
        r_max = params.max_speed * params.dt  # metres of progress per step, at most
        q_bound = round(r_max / (1.0 - gamma), 6)
        if table is None:
            raise Conflict("the champion's actor is discrete but its config names no discretisation (n_steer)")
        inside = bool(np.all(table >= space.low) and np.all(table <= space.high))
        demo.note(f"discrete actor (DQN): argmax over {len(table)} Q-values; index i drives DiscretizeAction's "
                  f"table row i: {len(table)} rows, {'all' if inside else 'NOT all'} within the action limits "
                  f"{action_low}..{action_high} (checked row by row)")
        demo.note(f"verified: the Q-network up to the ArgMax ({model.name}): |Q| ≤ r_max/(1−γ) = "
                  f"{r_max:g}/(1−{gamma:g}) = {q_bound:g} (r_max: top speed × dt, in metres a step), "
                  f"and ±{EPSILON:g} on an observation moves each Q ≤ {DELTA:g}")
    else:
        model = folder / "champion.onnx"
        model.write_bytes(champ.onnx)
        q_bound = None
        demo.note(f"verified: every action within {action_low}..{action_high}, and ±{EPSILON:g} on an "
                  f"observation moves each action ≤ {DELTA:g}")
    outputs = len(table) if q_bound is not None and table is not None else len(action_low)
    spec_data = champion_spec(low, high, points, outputs=outputs, q_bound=q_bound, action_low=action_low,
                              action_high=action_high)
    spec_path = folder / "champion-safety.yaml"
    certificates, required = prove(model, spec_data, spec_path=spec_path)
    with user_session() as (session, user):
        asset = store_certificates(session, user, certificates, experiment_id=champ.experiment_id,
                                   iteration_id=champ.iteration_id)
        demo.ids["certificate"] = asset.id
        if q_data is not None:  # the bytes the certificate's sha256 names, next to model.onnx
            upload_asset(session, user, AssetCreate(experiment_id=champ.experiment_id, iteration_id=champ.iteration_id,
                                                    name=model.name, tags=["verified"]), model)
    (folder / "box.json").write_text(json.dumps({"low": low, "high": high, "action_low": action_low,
                                                 "action_high": action_high}))
    demo.ids["verify box"] = str(folder / "box.json")
    lines = certificate_lines(certificates)
    lines[0] += f" ({model.name})"
    for line in lines:
        demo.note(line)
    demo.note(f"certificate stored as asset {asset.id} (tag certificate) of iteration {champ.iteration_id}")
    refusal = gate(certificates, required)
    if refusal is None:
        demo.note(f"safety gate: require_proved({required}) passes — the champion may be promoted")
    else:
        demo.note(f"safety gate refuses promotion: {refusal}")
    demo.note(f"reproduce: flywheel verify --model {model} --spec {spec_path}")


def refuse_unsafe_policy(demo: Any) -> None:
    """Refuse a deliberately unsafe policy: its verification finds a counterexample, and the gate says no."""
    if "verify box" not in demo.ids:
        demo.note("skipped: the champion step wrote no observation box")
        return
    box = json.loads(Path(demo.ids["verify box"]).read_text())
    folder = Path(demo.ids["verify box"]).parent
    model = unsafe_policy(folder / "unsafe.onnx", len(box["low"]))
    demo.note(f"unsafe.onnx (sha256 {sha256_file(model)[:16]}…): steer = −{UNSAFE_GAIN:g}·(heading error + "
              f"lateral offset), throttle {UNSAFE_THROTTLE:g}, no clip; a ReLU network {len(box['low'])}→8→2")
    spec_data = {"properties": [action_limits_property(box["low"], box["high"], box["action_low"],
                                                       box["action_high"])]}
    certificates, required = prove(model, spec_data, spec_path=folder / "unsafe-safety.yaml")
    for line in certificate_lines(certificates):
        demo.note(line)
    refusal = gate(certificates, required)
    if refusal is None:
        demo.note("safety gate: passes (the unsafe policy was NOT refused — the box is too small to show it)")
    else:
        demo.note(f"safety gate refuses it: Conflict: {refusal}")


VERIFY_STEPS = [verify_champion, refuse_unsafe_policy]
