"""ONNX → layers: parity with onnxruntime on every graph shape Flywheel exports; unsupported graphs refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from flywheel.errors import InvalidInput
from flywheel.safety.verify.derived import twin, unroll
from flywheel.safety.verify.examples import random_mlp, random_mlp_onnx, to_onnx
from flywheel.safety.verify.network import SUPPORTED_OPS, load_network
from flywheel.training.onnx_export import onnx_policy


def parity(path: Path, in_dim: int, width: float = 2.0) -> None:
    x = np.random.default_rng(0).uniform(-width, width, size=(500, in_dim)).astype(np.float32)
    expected = onnx_policy(path)(x)
    got = load_network(path)(x.astype(np.float64))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_with_ppo_clip_matches_onnxruntime(tmp_path: Path, activation: str) -> None:
    path = random_mlp_onnx(tmp_path / "p.onnx", [5, 16, 16, 3], seed=1, activation=activation,
                           clip=([-0.1, -0.2, -0.3], [0.1, 0.2, 0.3]))
    parity(path, 5)


class _Squash(torch.nn.Module):  # what SAC/TD3 exports: tanh, then rescale to [low, high]
    def __init__(self) -> None:
        super().__init__()
        self.body = random_mlp([3, 8, 2], seed=2)
        self.register_buffer("low", torch.tensor([-2.0, 0.0]))
        self.register_buffer("high", torch.tensor([2.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.low + 0.5 * (torch.tanh(self.body(x)) + 1.0) * (self.high - self.low)


def test_sac_style_rescale_matches_onnxruntime(tmp_path: Path) -> None:
    parity(to_onnx(_Squash().eval(), 3, tmp_path / "sac.onnx"), 3)


def test_sb3_ppo_export_matches(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from flywheel.training.onnx_export import export_onnx

    path = export_onnx(PPO("MlpPolicy", "Pendulum-v1", device="cpu", seed=0), tmp_path / "ppo.onnx")
    parity(path, 3, width=5.0)


def test_unsupported_operator_is_refused_with_the_list(tmp_path: Path) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Sigmoid(), torch.nn.Linear(4, 1))
    path = to_onnx(module.eval(), 3, tmp_path / "sig.onnx")
    with pytest.raises(InvalidInput) as err:
        load_network(path)
    assert "Sigmoid" in err.value.message and err.value.field == "model"
    assert "Gemm" in str(err.value.allowed) and err.value.allowed == ", ".join(SUPPORTED_OPS)


def test_argmax_and_branching_graphs_are_refused(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["obs"], ["r"]), helper.make_node("Tanh", ["obs"], ["t"]),
                               helper.make_node("Add", ["r", "t"], ["action"])], "g", [x], [y])
    path = tmp_path / "branch.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(InvalidInput, match="chain"):
        load_network(path)
    graph = helper.make_graph([helper.make_node("ArgMax", ["obs"], ["action"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(InvalidInput, match="ArgMax"):
        load_network(path)


def test_not_onnx_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_text("hello")
    with pytest.raises(InvalidInput):
        load_network(tmp_path / "x.onnx")


def test_derived_networks_match_their_definitions(tmp_path: Path) -> None:
    path = random_mlp_onnx(tmp_path / "p.onnx", [3, 8, 8, 2], seed=3, activation="tanh", clip=([-1, -1], [1, 1]))
    net = load_network(path)
    rng = np.random.default_rng(0)
    x, e = rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) * 0.1
    np.testing.assert_allclose(twin(net)(np.hstack([x, e])), net(x + e) - net(x), atol=1e-12)
    matrix, offset = rng.normal(size=(3, 2)), rng.normal(size=3)
    rolled = unroll(net, steps=6, dt=0.1, state_matrix=matrix, obs_offset=offset, action_indices=[1, 0],
                    clip_low=np.array([-0.5, -0.5]), clip_high=np.array([0.5, 0.5]))
    q0 = rng.normal(size=(10, 2))
    q, states = q0, []
    for _ in range(6):
        q = q + 0.1 * np.clip(net(q @ matrix.T + offset)[:, [1, 0]], -0.5, 0.5)
        states.append(q)
    np.testing.assert_allclose(rolled(q0), np.hstack(states), atol=1e-12)
