"""The demo's verification steps: the champion's spec proved and stored, an unsafe policy refuted and refused."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

from flywheel.blobs import get_blob_store
from flywheel.demo import STEPS, create_demo_project, demo_environment, run_demo
from flywheel.platform.assets import list_assets
from flywheel.platform.commands._identity import user_session
from flywheel.safety.verify.certificate import Certificate
from flywheel.safety.verify.demo_steps import (
    VERIFY_STEPS,
    action_limits_property,
    champion_spec,
    gate,
    observed_box,
    prove,
    q_network_onnx,
    robustness_points,
    unsafe_policy,
)
from flywheel.training.onnx_export import onnx_policy

OBS_DIM = 13  # the track's observation width


class _ArgmaxQ(nn.Module):
    """A tiny DQN-shaped actor: argmax of a ReLU Q-network (as ``export_onnx`` writes DQN)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.q_net = nn.Sequential(nn.Linear(OBS_DIM, 16), nn.ReLU(), nn.Linear(16, 6))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.q_net(obs), dim=1)


def _argmax_onnx(path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(_ArgmaxQ().eval(), (torch.zeros(2, OBS_DIM),), str(path), dynamo=False,
                          opset_version=17, input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}})
    return path


def _observations() -> np.ndarray:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-0.5, 0.5, size=(200, OBS_DIM))
    obs[:, 2] = rng.uniform(-1.0, 1.0, size=200)  # the car reaches the road's edge
    return obs


def test_champion_spec_is_proved_on_the_q_network_up_to_its_argmax(tmp_path: Path) -> None:
    actor = _argmax_onnx(tmp_path / "model.onnx")
    cut = q_network_onnx(actor.read_bytes())
    assert cut is not None
    q_path = tmp_path / "q_network.onnx"
    q_path.write_bytes(cut)
    obs = _observations()
    # the cut network is the actor's Q-network: its argmax is the actor's action
    assert np.array_equal(onnx_policy(q_path)(obs).argmax(axis=1), onnx_policy(actor)(obs))
    low, high = observed_box(obs)
    assert np.all(np.array(low) <= obs.min(axis=0)) and np.all(np.array(high) >= obs.max(axis=0))
    spec = champion_spec(low, high, robustness_points(obs), outputs=6, q_bound=50.0, action_low=[-1, 0],
                         action_high=[1, 1])
    certificates, required = prove(q_path, spec, time_limit=3.0, spec_path=tmp_path / "safety.yaml")
    assert {c.property_name: c.result for c in certificates} == {"q-values-bounded": "proved", "smooth": "proved"}
    assert required == ["q-values-bounded", "smooth"]
    assert gate(certificates, required) is None
    assert (tmp_path / "safety.yaml").is_file()
    assert q_network_onnx(q_path.read_bytes()) is None  # no ArgMax left: a continuous actor is verified as is


def test_unsafe_policy_is_refuted_and_its_counterexample_reproduces(tmp_path: Path) -> None:
    low, high = observed_box(_observations())
    model = unsafe_policy(tmp_path / "unsafe.onnx", OBS_DIM)
    spec = {"properties": [action_limits_property(low, high, [-1.0, 0.0], [1.0, 1.0])]}
    certificates, required = prove(model, spec, time_limit=3.0)
    (cert,) = certificates
    assert cert.result == "refuted"
    refuted = [q for q in cert.queries if q.result == "refuted"]
    assert len(refuted) == 1
    ce = refuted[0].counterexample
    assert ce is not None
    # the counterexample reproduces: the unsafe ONNX, run here, puts the steering beyond its limit
    x = np.asarray(ce["detail"]["observation"], np.float32)
    assert np.all(x >= np.array(low) - 1e-6) and np.all(x <= np.array(high) + 1e-6)
    action = onnx_policy(model)(x)
    assert action[0] < -1.0 or action[0] > 1.0
    assert action[0] == pytest.approx(ce["measured"], abs=1e-5)
    message = gate(certificates, required)
    assert message == "not proved: actions-in-limits (refuted)"


def _tiny_champion(demo: Any) -> None:
    """Train a tiny DQN on the track and crown it (stands in for the autoresearch step)."""
    from flywheel.platform.aliases import set_alias
    from flywheel.platform.commands._identity import user_session
    from flywheel.training.runner import TrainRequest, train

    overrides = {"total_timesteps": 200, "learning_starts": 100, "net_arch": [16], "eval_episodes": 1,
                 "n_steer": 3, "env_kwargs": {"max_steps": 60}}
    with user_session() as (session, user):
        outcome = train(session, user, TrainRequest(template="dqn", project=demo.ids["project"],
                                                    experiment="tiny-dqn", overrides=overrides))
        set_alias(session, user, demo.ids["project"], "champion", outcome.iteration.id)
        demo.ids["champion"] = outcome.iteration.id


def test_demo_steps_verify_the_champion_and_refuse_the_unsafe_policy(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=250)
    home = tmp_path / ".flywheel-demo"
    steps = [*STEPS[: STEPS.index(create_demo_project) + 1], _tiny_champion, *VERIFY_STEPS]
    demo = run_demo(home, out=console, steps=steps)
    text = console.export_text()
    assert "q-values-bounded  PROVED" in text and "smooth            PROVED" in text
    assert "require_proved(['q-values-bounded', 'smooth']) passes" in text
    assert "actions-in-limits REFUTED" in text
    assert "safety gate refuses it: Conflict: not proved: actions-in-limits (refuted)" in text
    with demo_environment(home), user_session() as (session, user):
        stored = list_assets(session, user, iteration_id=demo.ids["champion"], tag="certificate")
        assert [a.id for a in stored] == [demo.ids["certificate"]]
        certs = [Certificate.model_validate(c) for c in json.loads(get_blob_store().read_bytes(stored[0].blob_hash))]
        names = {a.name: a.blob_hash for a in list_assets(session, user, iteration_id=demo.ids["champion"])}
    assert {c.result for c in certs} == {"proved"}
    assert certs[0].model_sha256 == names["q_network.onnx"]  # the certificate names the stored, verified bytes
