"""Export the deterministic actor of a Stable-Baselines3 model to ONNX, and run it with onnxruntime.

The exported graph maps a float32 batch of observations ``obs [batch, n]`` to ``action``: exactly what
``model.predict(obs, deterministic=True)`` answers, with the post-processing SB3 does outside the network
written into the graph:

================  =====================================================================================
algorithm         actor
================  =====================================================================================
PPO / A2C, Box    features → ``mlp_extractor.forward_actor`` → ``action_net`` (the Gaussian mean), clipped
                  to the action space (as ``predict`` clips)
PPO / A2C, Disc.  … → ``action_net`` logits → argmax (``int64``)
SAC / TD3         ``tanh(mu(latent_pi(features)))`` rescaled from [-1, 1] to ``[low, high]``
DQN               ``argmax`` of ``q_net(obs)`` (``int64``)
================  =====================================================================================

The batch axis is dynamic; the opset is 17 or newer. Flat ``Box`` observations only (what every Flywheel task
has). The parity of torch and onnxruntime within 1e-5 is a test (``tests/training/test_onnx_export.py``).

Example:
    >>> from stable_baselines3 import PPO
    >>> model = PPO("MlpPolicy", "Pendulum-v1", n_steps=64, device="cpu", seed=0)
    >>> path = export_onnx(model, Path("/tmp/fw-ppo.onnx"))
    >>> policy = onnx_policy(path)
    >>> obs = np.zeros(3, np.float32)
    >>> bool(np.allclose(policy(obs), model.predict(obs, deterministic=True)[0], atol=1e-5))
    True
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from flywheel.errors import InvalidInput

OPSET = 17
INPUT_NAME = "obs"
OUTPUT_NAME = "action"


class _PolicyActor(nn.Module):
    """PPO/A2C ``ActorCriticPolicy``: the mean (Box, clipped) or the argmax (Discrete)."""

    def __init__(self, policy: Any, action_space: spaces.Space) -> None:
        super().__init__()
        self.policy = policy
        self.discrete = isinstance(action_space, spaces.Discrete)
        if not self.discrete:
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.policy.extract_features(obs)
        if isinstance(features, tuple):  # separate actor and critic extractors
            features = features[0]
        out = self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))
        if self.discrete:
            return torch.argmax(out, dim=1)
        return torch.maximum(torch.minimum(out, self.high), self.low)


class _SquashedActor(nn.Module):
    """SAC/TD3 actors: tanh-squashed mean, rescaled to the action space."""

    def __init__(self, actor: Any, action_space: spaces.Box, *, sac: bool) -> None:
        super().__init__()
        self.actor = actor
        self.sac = sac
        self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        actor = self.actor
        features = actor.extract_features(obs, actor.features_extractor)
        # SAC: tanh of the Gaussian mean; TD3: mu ends with a tanh already
        squashed = torch.tanh(actor.mu(actor.latent_pi(features))) if self.sac else actor.mu(features)
        return self.low + 0.5 * (squashed + 1.0) * (self.high - self.low)


class _QArgmax(nn.Module):
    """DQN: the greedy action of the online Q-network."""

    def __init__(self, q_net: Any) -> None:
        super().__init__()
        self.q_net = q_net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.q_net(obs), dim=1)


def actor_module(model: Any) -> nn.Module:
    """The deterministic actor of an SB3 model as a torch module ``obs [batch, n] -> action [batch, …]``.

    Raises:
        InvalidInput: an algorithm or space this exporter does not handle (``field="model"``).

    Example:
        >>> from stable_baselines3 import DQN
        >>> actor = actor_module(DQN("MlpPolicy", "CartPole-v1", device="cpu"))
        >>> actor(torch.zeros(4, 4)).shape
        torch.Size([4])
    """
    from stable_baselines3 import DQN, SAC, TD3
    from stable_baselines3.common.policies import ActorCriticPolicy

    obs_space = model.observation_space
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise InvalidInput(f"cannot export a policy over {obs_space}", field="model.observation_space",
                           allowed="Box of shape (n,)")
    policy = model.policy
    if isinstance(model, DQN):
        module: nn.Module = _QArgmax(policy.q_net)
    elif isinstance(model, SAC | TD3):
        module = _SquashedActor(policy.actor, model.action_space, sac=isinstance(model, SAC))
    elif isinstance(policy, ActorCriticPolicy):
        if getattr(policy, "squash_output", False) or getattr(policy, "use_sde", False):
            raise InvalidInput("gSDE / squashed PPO policies are not exported", field="model",
                               allowed="use_sde=False")
        if not isinstance(model.action_space, spaces.Box | spaces.Discrete):
            raise InvalidInput(f"cannot export actions of {model.action_space}", field="model.action_space",
                               allowed="Box or Discrete")
        module = _PolicyActor(policy, model.action_space)
    else:
        raise InvalidInput(f"cannot export {type(model).__name__}", field="model", allowed=["PPO", "A2C", "SAC",
                                                                                           "TD3", "DQN"])
    return module.eval()


def export_onnx(model: Any, path: Path, *, opset: int = OPSET) -> Path:
    """Write ``model``'s deterministic actor to ``path`` as ONNX (crash-safe: temp file, fsync, rename).

    Args:
        model: a PPO, A2C, SAC, TD3 or DQN model.
        path: the ``.onnx`` file to write.
        opset: ONNX opset, ≥ 17.

    Returns:
        ``path``. Input ``obs`` (float32, ``[batch, n]``), output ``action`` (float32 ``[batch, m]`` or
        int64 ``[batch]``); the batch axis is dynamic.
    """
    if opset < OPSET:
        raise InvalidInput(f"got {opset}", field="opset", allowed=f"≥ {OPSET}")
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = actor_module(model)
    dummy = torch.zeros(2, model.observation_space.shape[0], dtype=torch.float32)
    tmp = path.with_name(f".{path.name}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the dynamo exporter needs onnxscript; this one is exact
        torch.onnx.export(
            module, (dummy,), str(tmp), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    onnx.checker.check_model(str(tmp))
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path


class OnnxPolicy:
    """A policy backed by onnxruntime: ``policy(obs) -> action`` for one observation or a batch.

    One observation of shape ``(n,)`` gives one action (``(m,)`` float32 array, or a Python ``int`` for
    discrete actions); a batch ``(b, n)`` gives ``(b, m)`` / ``(b,)``. Single-threaded by default.
    """

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.obs_dim = int(self.session.get_inputs()[0].shape[1])

    def __call__(self, obs: Any) -> Any:
        batch = np.asarray(obs, dtype=np.float32)
        single = batch.ndim == 1
        if single:
            batch = batch[None]
        if batch.ndim != 2 or batch.shape[1] != self.obs_dim:
            raise InvalidInput(f"has shape {np.shape(obs)}", field="obs",
                               allowed=f"({self.obs_dim},) or (b, {self.obs_dim})")
        action = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        if not single:
            return action
        return int(action[0]) if action.ndim == 1 else action[0]

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[Any, None]:
        """SB3-style ``predict`` (the ONNX actor is deterministic; ``deterministic`` is ignored)."""
        return self(obs), None


def onnx_policy(path: Path, *, threads: int = 1) -> OnnxPolicy:
    """Load an exported actor as a callable policy (see :class:`OnnxPolicy`)."""
    return OnnxPolicy(path, threads=threads)
