"""BC: behavioural cloning of demonstrations into PPO's actor-critic network.

The recipe, top to bottom:

1. **Check the inputs before any work.** The env is built (bad ids/kwargs refused), then every dataset in
   ``ctx.inputs.dataset_roots`` is opened and its ``observation.state`` and ``action`` features are compared
   with :func:`~flywheel.training.envs.features_for` of the env: a missing feature, another shape or dtype is
   refused with :class:`~flywheel.errors.InvalidInput` naming the feature and both shapes.
2. Seed, write ``config.json``.
3. **Network.** :func:`flywheel.training.templates.ppo.make_model` builds the ``PPO`` whose
   ``ActorCriticPolicy`` we fit, so ``model.zip`` loads with ``PPO.load`` and PPO can fine-tune it (``bc_ppo``).
4. **Actor.** Box actions: mean squared error between the policy's Gaussian mean and the demonstrated action.
   We chose MSE over the Gaussian log-likelihood: with the std held fixed the two have the same minimiser,
   and MSE does not depend on the std, so ``log_std_init`` is free to set PPO's later exploration (BC never
   trains ``log_std``; a low value keeps a fine-tuned policy close to the clone). Discrete actions:
   cross-entropy of the logits against the demonstrated index.
5. **Critic** (``value_pretrain``): the value head is regressed on discounted Monte-Carlo returns of the
   demonstrations (:func:`mc_returns`), so PPO's first advantages are meaningful rather than the noise of an
   untrained critic. Episodes that ended by a time limit get a bootstrapped tail, as PPO itself bootstraps
   truncated episodes.
6. Save, export ONNX, evaluate (:func:`~flywheel.training.templates.runtime.finish`). ``env_steps`` and
   ``env_episodes`` are the demonstrations' frames and episodes: the environment interaction BC consumed.

The pieces (:func:`load_demonstrations`, :func:`fit_policy`, :func:`fit_value`) are reused by ``dagger`` and
``bc_ppo``.

Example:
    >>> BCConfig(bc_epochs=20).bc_epochs
    20
    >>> mc_returns(np.array([1.0, 1.0]), gamma=0.5, terminated=True).tolist()
    [1.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from flywheel.errors import InvalidInput
from flywheel.training.base import RunContext, RunResult, Template
from flywheel.training.templates.common import RLConfig

if TYPE_CHECKING:  # runtime imports torch and Stable-Baselines3; the registry must load without them
    from flywheel.training.templates.runtime import Resources

#: Steps whose mean reward is the bootstrapped tail of a truncated episode (:func:`mc_returns`). Episodes whose
#: metadata lacks ``terminated`` (recorded elsewhere than :mod:`flywheel.training.demos`) count as truncated.
TAIL_WINDOW = 10


class BCFields(BaseModel):
    """The behavioural-cloning settings shared by ``bc``, ``dagger`` and ``bc_ppo``."""

    bc_epochs: int = Field(100, ge=1, le=10_000, description="Passes over the demonstrations when fitting the actor.")
    bc_batch_size: int = Field(256, ge=1, le=65_536, description="Minibatch size of the regression.")
    bc_learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate of the regression.")
    bc_weight_decay: float = Field(0.0, ge=0, le=1, description="Adam weight decay (L2) of the regression.")
    value_pretrain: bool = Field(True, description="Fit the value head to Monte-Carlo returns of the demonstrations.")
    value_epochs: int = Field(50, ge=1, le=10_000, description="Passes over the demonstrations when fitting the value.")
    discretize: tuple[int, int] | None = Field(
        None, description="(n_steer, n_throttle) of DiscretizeAction for datasets of discrete action indices "
        "(car tasks); None for the task's own actions.")


class BCConfig(RLConfig, BCFields):
    """Behavioural cloning settings (the network is PPO's ``MlpPolicy`` with ``net_arch``)."""

    total_timesteps: int = Field(1, ge=1, le=10**9, description="Unused: BC takes no environment steps.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount of the value targets (use PPO's when fine-tuning).")
    log_std_init: float = Field(-1.0, ge=-5, le=2, description="Log std of the Gaussian policy (Box only); "
                                "held fixed by BC, it is the exploration PPO starts from.")


@dataclass
class Demonstrations:
    """Demonstrations flattened into training arrays.

    Attributes:
        obs: observations, ``(N, n)`` float32.
        actions: ``(N, m)`` float32 for Box actions, ``(N,)`` int64 indices for Discrete.
        returns: discounted return-to-go of each step, ``(N,)`` float32 (see :func:`mc_returns`).
        episodes: how many episodes they came from.
    """

    obs: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    episodes: int

    @property
    def frames(self) -> int:
        """The number of (observation, action) pairs: the environment steps the demonstrations took."""
        return len(self.obs)


def check_features(dataset_features: dict[str, dict[str, Any]], env: Any, *, where: str = "dataset") -> None:
    """Refuse a dataset whose ``observation.state``/``action`` do not match ``env``'s spaces.

    Raises:
        InvalidInput: ``field="<where>.features.<key>"`` naming the dataset's and the env's shape and dtype.

    Example:
        >>> from flywheel.training.envs import make_env
        >>> feats = {"observation.state": {"dtype": "float32", "shape": [5], "names": None},
        ...          "action": {"dtype": "float32", "shape": [2], "names": None}}
        >>> check_features(feats, make_env("flywheel/Track-v0"))
        Traceback (most recent call last):
        ...
        flywheel.errors.InvalidInput: dataset.features.observation.state: the dataset has float32 [5], ...
    """
    from flywheel.training.envs import features_for

    expected = features_for(env)
    for key, want in expected.items():
        have = dataset_features.get(key)
        field = f"{where}.features.{key}"
        if have is None:
            raise InvalidInput(f"the dataset has no {key!r} feature (it has {sorted(dataset_features)})",
                               field=field, allowed=f"{want['dtype']} {want['shape']}")
        if list(have.get("shape", [])) != list(want["shape"]) or have.get("dtype") != want["dtype"]:
            raise InvalidInput(f"the dataset has {have.get('dtype')} {list(have.get('shape', []))}, the env "
                               f"needs {want['dtype']} {want['shape']}", field=field,
                               allowed=f"{want['dtype']} {want['shape']}")


def mc_returns(rewards: np.ndarray, *, gamma: float, terminated: bool) -> np.ndarray:
    """Discounted return-to-go of each step of one episode.

    A terminated episode has value 0 after its last step. A truncated one (time limit) continues in
    reality, so its tail is bootstrapped as if the mean reward of its last ``TAIL_WINDOW`` steps went on
    forever: ``G_T = mean(r[-10:]) / (1 - γ)`` — the value PPO's truncation bootstrap would converge to
    for a policy holding a steady state.

    Example:
        >>> mc_returns(np.array([0.0, 1.0]), gamma=0.5, terminated=True).tolist()
        [0.5, 1.0]
        >>> float(mc_returns(np.ones(20), gamma=0.9, terminated=False)[0])  # 1 / (1 - 0.9)
        10.0
    """
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    tail = 0.0 if terminated or gamma >= 1 else float(np.mean(rewards[-TAIL_WINDOW:])) / (1.0 - gamma)
    out = np.empty_like(rewards)
    running = tail
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out.astype(np.float32)


def load_demonstrations(roots: Sequence[Path], env: Any, *, gamma: float) -> Demonstrations:
    """Check every dataset against ``env`` (all of them first), then read their episodes into arrays.

    Soft-deleted episodes are left out and trims applied (the reader's defaults).

    Raises:
        InvalidInput: no dataset (``inputs.dataset_roots``), a folder that is not a dataset, features that do
            not match the env (``dataset.features.<key>``), or datasets without a single frame.
    """
    from gymnasium import spaces

    from flywheel.datasets.reader import DatasetReader
    from flywheel.errors import NotFound

    if not roots:
        raise InvalidInput("this template learns from demonstrations and got no dataset",
                           field="inputs.dataset_roots", allowed="one or more dataset folders")
    readers = []
    for root in roots:
        try:
            reader = DatasetReader(Path(root))
        except NotFound as exc:
            raise InvalidInput(f"{root} is not a dataset", field="inputs.dataset_roots",
                               allowed="dataset folders") from exc
        check_features(reader.features, env)
        readers.append(reader)
    discrete = isinstance(env.action_space, spaces.Discrete)
    obs, actions, returns = [], [], []
    episodes = 0
    for reader in readers:
        for ep in reader.iter_episodes(include_videos=False):
            if ep.num_frames == 0:
                continue
            cols = ep.columns
            obs.append(np.asarray(cols["observation.state"], dtype=np.float32))
            act = np.asarray(cols["action"])
            actions.append(act.reshape(-1).astype(np.int64) if discrete else act.astype(np.float32))
            terminated = bool(ep.metadata.get("terminated", False))
            returns.append(mc_returns(cols["next.reward"], gamma=gamma, terminated=terminated))
            episodes += 1
    if not obs:
        raise InvalidInput("the datasets hold no episodes", field="inputs.dataset_roots",
                           allowed="datasets with at least one episode")
    return Demonstrations(np.concatenate(obs), np.concatenate(actions), np.concatenate(returns), episodes)


def _minibatches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def policy_loss(policy: Any, obs: Any, actions: Any) -> Any:
    """The BC loss of ``policy`` on a batch: MSE of the Gaussian mean (Box) or cross-entropy (Discrete).

    ``obs`` and ``actions`` are torch tensors (actions float ``(B, m)`` or int64 ``(B,)``).
    """
    from torch.nn import functional

    dist = policy.get_distribution(obs).distribution
    if actions.dtype.is_floating_point:
        return functional.mse_loss(dist.mean, actions)
    return functional.cross_entropy(dist.logits, actions)


def fit_policy(policy: Any, demos: Demonstrations, config: BCFields, *, seed: int,
               log: Callable[[int, dict[str, float]], None] = lambda step, metrics: None,
               should_stop: Callable[[], bool] = lambda: False, optimizer: Any = None) -> Any:
    """Fit ``policy``'s actor (features, policy MLP, action head; never ``log_std``) to the demonstrations.

    Args:
        policy: an SB3 ``ActorCriticPolicy``.
        demos: the training arrays.
        config: ``bc_epochs``, ``bc_batch_size``, ``bc_learning_rate``, ``bc_weight_decay``.
        seed: seeds the minibatch order.
        log: called after each epoch with ``(gradient steps so far, {"losses/bc_loss": …})``.
        should_stop: polled after each epoch; True ends the fit early.
        optimizer: an Adam to continue with (DAgger refits keep theirs), else a new one.

    Returns:
        The optimizer (pass it back in to continue).
    """
    import torch

    params = [p for name, p in policy.named_parameters() if _is_actor(name)]
    if optimizer is None:
        optimizer = torch.optim.Adam(params, lr=config.bc_learning_rate, weight_decay=config.bc_weight_decay)
    obs = torch.as_tensor(demos.obs)
    actions = torch.as_tensor(demos.actions)
    rng = np.random.default_rng(seed)
    policy.set_training_mode(True)
    steps = 0
    for _epoch in range(config.bc_epochs):
        total, count = 0.0, 0
        for idx in _minibatches(len(obs), config.bc_batch_size, rng):
            loss = policy_loss(policy, obs[idx], actions[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            steps += 1
        log(steps, {"losses/bc_loss": total / count})
        if should_stop():
            break
    policy.set_training_mode(False)
    return optimizer


def fit_value(policy: Any, demos: Demonstrations, config: BCFields, *, seed: int,
              log: Callable[[int, dict[str, float]], None] = lambda step, metrics: None,
              should_stop: Callable[[], bool] = lambda: False) -> float:
    """Fit ``policy``'s critic (value MLP and head) to ``demos.returns`` by MSE; return the final loss."""
    import torch
    from torch.nn import functional

    params = [p for name, p in policy.named_parameters() if _is_critic(name)]
    optimizer = torch.optim.Adam(params, lr=config.bc_learning_rate)
    obs = torch.as_tensor(demos.obs)
    targets = torch.as_tensor(demos.returns).reshape(-1, 1)
    rng = np.random.default_rng(seed + 1)
    with torch.no_grad():  # start from the mean return: returns are O(100), an untrained head answers O(0.1)
        policy.value_net.bias.add_(targets.mean() - policy.predict_values(obs).mean())
    policy.set_training_mode(True)
    steps, last = 0, float("nan")
    for _epoch in range(config.value_epochs):
        total, count = 0.0, 0
        for idx in _minibatches(len(obs), config.bc_batch_size, rng):
            loss = functional.mse_loss(policy.predict_values(obs[idx]), targets[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            steps += 1
        last = total / count
        log(steps, {"losses/value_pretrain_loss": last})
        if should_stop():
            break
    policy.set_training_mode(False)
    return last


def _is_actor(name: str) -> bool:
    return name.startswith(("mlp_extractor.policy_net", "action_net", "pi_features_extractor",
                            "features_extractor"))


def _is_critic(name: str) -> bool:
    return name.startswith(("mlp_extractor.value_net", "value_net", "vf_features_extractor"))


def ppo_config_for(config: Any) -> Any:
    """The :class:`~flywheel.training.templates.ppo.PPOConfig` whose network a BC-style config fits.

    Shared fields (env, seed, ``net_arch``, ``gamma``, ``log_std_init``, …) are carried over, the rest are
    PPO's defaults; they are what ``PPO.load`` will fine-tune with unless the fine-tuning overrides them.
    """
    from flywheel.training.templates.ppo import PPOConfig

    if isinstance(config, PPOConfig):
        return config
    shared = {k: getattr(config, k) for k in PPOConfig.model_fields if k in type(config).model_fields}
    shared.pop("total_timesteps", None)
    shared.pop("learning_rate", None)
    return PPOConfig(**shared)


def build_model(config: Any, keep: Resources, *, n_envs: int = 1) -> tuple[Any, Any]:
    """The PPO model (and its vec env) that BC-style templates fit: ``ppo.make_model`` on ``config``'s env.

    The vec env is handed to ``keep`` (the run's :class:`~flywheel.training.templates.runtime.Resources`) as soon
    as it exists, so it is closed even if building the model fails.
    """
    from flywheel.training.envs import make_vec_env
    from flywheel.training.templates.common import wrapper_kwargs
    from flywheel.training.templates.ppo import make_model

    venv = keep(make_vec_env(config.env_id, config.env_kwargs, n_envs=n_envs, seed=config.seed,
                             discretize=config.discretize, **wrapper_kwargs(config)))
    return make_model(ppo_config_for(config), venv), venv


def clone(model: Any, demos: Demonstrations, config: Any, ctx: RunContext) -> None:
    """Phases 4 and 5 of the recipe on ``model.policy``: fit the actor, then (if asked) the critic."""
    fit_policy(model.policy, demos, config, seed=config.seed, log=ctx.log_metrics, should_stop=ctx.should_stop)
    if config.value_pretrain and not ctx.should_stop():
        fit_value(model.policy, demos, config, seed=config.seed, log=ctx.log_metrics, should_stop=ctx.should_stop)


class BCTemplate(Template):
    """Behavioural cloning from demonstration datasets into PPO's policy network."""

    id = "bc"
    version = 1
    description = ("Behavioural cloning (MSE on the Gaussian mean for Box actions, cross-entropy for Discrete) "
                   "into a PPO policy; value head fitted to Monte-Carlo returns.")
    config_model = BCConfig

    def run(self, config: BCConfig, ctx: RunContext) -> RunResult:  # type: ignore[override]
        """Clone the demonstrations in ``ctx.inputs.dataset_roots`` and evaluate the clone."""
        from flywheel.training.envs import make_env
        from flywheel.training.templates import runtime

        with runtime.Resources() as keep:  # the envs are closed however the run ends
            # 1. inputs checked before any work: the env, then every dataset's features against its spaces
            env = keep(make_env(config.env_id, config.env_kwargs, discretize=config.discretize))
            demos = load_demonstrations(ctx.inputs.dataset_roots, env, gamma=config.gamma)
            keep.close(env)
            # 2. seeds, threads, config.json
            runtime.start_run(config, ctx)
            # 3. PPO's network (optionally from a checkpoint), so model.zip loads with PPO.load
            model, _ = build_model(config, keep)
            runtime.load_init_checkpoint(model, ctx)
            # 4-5. actor by regression, critic on Monte-Carlo returns
            clone(model, demos, config, ctx)
            # 6. save, export, evaluate; the demonstrations are the environment interaction used
            return runtime.finish(model, config, ctx, algorithm="PPO", env_steps=demos.frames,
                                  env_episodes=demos.episodes, discretize=config.discretize)
