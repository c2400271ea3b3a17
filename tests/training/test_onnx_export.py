"""ONNX export: the exported actor answers what model.predict(obs, deterministic=True) does, within 1e-5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from stable_baselines3 import DQN, PPO, SAC

from flywheel.errors import InvalidInput
from flywheel.training.envs import make_env
from flywheel.training.onnx_export import OPSET, export_onnx, onnx_policy


def observations(env: Any, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Observations from the task (a random walk) plus wide random ones (exercise clipping and squashing)."""
    rng = np.random.default_rng(seed)
    visited = []
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    while len(visited) < n // 2:
        visited.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    wide = rng.normal(0.0, 2.0, (n - len(visited), len(obs))).astype(np.float32)
    return np.concatenate([np.array(visited, np.float32), wide])


def perturb(model: Any, seed: int = 0) -> None:
    """Give every weight non-trivial values (an untrained net has zero biases and a near-zero action head)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.policy.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.1)


def check_parity(model: Any, obs: np.ndarray, path: Path) -> np.ndarray:
    export_onnx(model, path)
    graph = onnx.load(str(path))
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) >= OPSET
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    policy = onnx_policy(path)
    expected = model.predict(obs, deterministic=True)[0]
    got = policy(obs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    for i in (0, 1, len(obs) - 1):  # single observations, the way a robot calls it
        np.testing.assert_allclose(policy(obs[i]), model.predict(obs[i], deterministic=True)[0], atol=1e-5, rtol=0)
    return expected


def test_ppo_continuous_parity(tmp_path: Path) -> None:
    env = make_env("flywheel/ReachyLookAt-v0")
    model = PPO("MlpPolicy", env, n_steps=64, device="cpu", seed=0)
    perturb(model)
    actions = check_parity(model, observations(env, 600), tmp_path / "ppo.onnx")
    assert (np.abs(actions) == 1.0).any() and (np.abs(actions) < 1.0).any()  # both clipped and free actions


def test_ppo_discrete_parity(tmp_path: Path) -> None:
    env = make_env("flywheel/Track-v0", discretize=(5, 3))
    model = PPO("MlpPolicy", env, n_steps=64, device="cpu", seed=1, policy_kwargs={"net_arch": [32, 32]})
    perturb(model, 1)
    actions = check_parity(model, observations(env), tmp_path / "ppo_discrete.onnx")
    assert actions.dtype.kind == "i" and len(np.unique(actions)) > 3
    assert isinstance(onnx_policy(tmp_path / "ppo_discrete.onnx")(observations(env, 2)[0]), int)


def test_sac_parity_tanh_squashed_and_rescaled(tmp_path: Path) -> None:
    env = make_env("flywheel/Track-v0")  # throttle in [0, 1]: the rescaling matters
    model = SAC("MlpPolicy", env, learning_starts=0, device="cpu", seed=2)
    perturb(model, 2)
    actions = check_parity(model, observations(env), tmp_path / "sac.onnx")
    assert actions[:, 1].min() >= 0.0 and actions[:, 1].max() <= 1.0 and actions[:, 1].std() > 0.05


def test_dqn_parity_argmax(tmp_path: Path) -> None:
    env = make_env("flywheel/Track-v0", discretize=(5, 3))
    model = DQN("MlpPolicy", env, device="cpu", seed=3)
    perturb(model, 3)
    actions = check_parity(model, observations(env), tmp_path / "dqn.onnx")
    assert len(np.unique(actions)) > 3


def test_unsupported_models_and_inputs_are_refused(tmp_path: Path) -> None:
    env = make_env("flywheel/Track-v0")
    model = PPO("MlpPolicy", env, n_steps=64, device="cpu", use_sde=True)
    with pytest.raises(InvalidInput) as caught:
        export_onnx(model, tmp_path / "sde.onnx")
    assert caught.value.field == "model" and not (tmp_path / "sde.onnx").exists()
    ok = export_onnx(PPO("MlpPolicy", env, n_steps=64, device="cpu"), tmp_path / "ok.onnx")
    with pytest.raises(InvalidInput) as caught:
        onnx_policy(ok)(np.zeros(5, np.float32))
    assert caught.value.field == "obs"
