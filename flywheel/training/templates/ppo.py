"""PPO (Stable-Baselines3): on-policy actor-critic for continuous (Box) or discrete actions.

The recipe, top to bottom: seed and write ``config.json``; build ``n_envs`` seeded training envs; build the
``PPO`` model (an ``MlpPolicy`` with ``net_arch`` for both actor and critic); load ``inputs.init_checkpoint``
if given (e.g. a BC-trained policy: BC→PPO fine-tunes the same network); learn, logging ``charts/``,
``losses/`` and ``eval/`` metrics and TensorBoard events, stopping early when asked; save ``model.zip``,
export ``model.onnx``, evaluate the exported actor.

Example:
    >>> from flywheel.training.base import RunContext
    >>> config = PPOConfig(total_timesteps=256, n_steps=64, batch_size=64, eval_episodes=1,
    ...                    env_kwargs={"max_steps": 100})
    >>> result = PPOTemplate().run(config, RunContext(Path("/tmp/fw-ppo-doc")))  # doctest: +SKIP
    >>> result.checkpoint.name, result.onnx.name  # doctest: +SKIP
    ('model.zip', 'model.onnx')
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from flywheel.training.base import RunContext, RunResult, Template
from flywheel.training.templates.common import RLConfig, wrapper_kwargs


class PPOConfig(RLConfig):
    """PPO hyperparameters (Stable-Baselines3 names and meanings; defaults tuned for ``flywheel/Track-v0``)."""

    learning_rate: float = Field(3e-4, gt=0, le=1, description="Adam learning rate.")
    n_envs: int = Field(4, ge=1, le=64, description="Parallel environments (in one process).")
    n_steps: int = Field(512, ge=2, le=65_536, description="Steps per environment per rollout.")
    batch_size: int = Field(256, ge=2, le=65_536, description="Minibatch size; at most n_steps × n_envs.")
    n_epochs: int = Field(10, ge=1, le=100, description="Passes over each rollout.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE bias/variance trade-off.")
    clip_range: float = Field(0.2, gt=0, le=1, description="PPO's policy-ratio clip.")
    ent_coef: float = Field(0.0, ge=0, le=1, description="Entropy bonus coefficient.")
    vf_coef: float = Field(0.5, ge=0, le=10, description="Value-loss coefficient.")
    max_grad_norm: float = Field(0.5, gt=0, le=100, description="Gradient clipping norm.")
    log_std_init: float = Field(0.0, ge=-5, le=2, description="Initial log std of Gaussian actions (Box only).")

    @field_validator("batch_size")
    @classmethod
    def _batch_fits_rollout(cls, value: int, info: ValidationInfo) -> int:
        rollout = info.data.get("n_steps", 1) * info.data.get("n_envs", 1)
        if value > rollout:
            raise ValueError(f"must not exceed n_steps × n_envs = {rollout}")
        return value


def make_model(config: PPOConfig, venv: Any) -> Any:
    """The PPO model a config describes, on ``venv`` (shared with BC, which fits the same policy).

    Example:
        >>> from flywheel.training.envs import make_vec_env
        >>> model = make_model(PPOConfig(net_arch=[32]), make_vec_env("flywheel/Track-v0"))
        >>> model.policy.mlp_extractor.policy_net[0].out_features
        32
    """
    from gymnasium import spaces
    from stable_baselines3 import PPO

    policy_kwargs: dict[str, Any] = {"net_arch": {"pi": list(config.net_arch), "vf": list(config.net_arch)}}
    if isinstance(venv.action_space, spaces.Box):
        policy_kwargs["log_std_init"] = config.log_std_init
    return PPO(
        "MlpPolicy", venv,
        learning_rate=config.learning_rate, n_steps=config.n_steps, batch_size=config.batch_size,
        n_epochs=config.n_epochs, gamma=config.gamma, gae_lambda=config.gae_lambda, clip_range=config.clip_range,
        ent_coef=config.ent_coef, vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm,
        policy_kwargs=policy_kwargs, seed=config.seed, device="cpu", verbose=0,
    )


class PPOTemplate(Template):
    """Proximal Policy Optimisation on any flat-observation task."""

    id = "ppo"
    version = 1
    description = "PPO (Stable-Baselines3): on-policy actor-critic, Box or Discrete actions."
    config_model = PPOConfig

    def run(self, config: PPOConfig, ctx: RunContext) -> RunResult:  # type: ignore[override]
        """Train PPO from ``config`` (optionally from ``ctx.inputs.init_checkpoint``) and evaluate it."""
        from flywheel.training.envs import make_vec_env
        from flywheel.training.templates import runtime

        # 1. seeds, threads, config.json
        runtime.start_run(config, ctx)
        with runtime.Resources() as keep:  # envs, logger and callback are closed however the run ends
            # 2. environments (bad env ids / kwargs are refused here, before any training)
            venv = keep(make_vec_env(config.env_id, config.env_kwargs, n_envs=config.n_envs, seed=config.seed,
                                     **wrapper_kwargs(config)))
            # 3. model, optionally initialised from a checkpoint
            model = make_model(config, venv)
            runtime.load_init_checkpoint(model, ctx)
            model.set_logger(keep(runtime.sb3_logger(ctx)))
            # 4. learn; the callback stops early on ctx.should_stop() and logs eval/ metrics every eval_every steps
            callback = keep(runtime.RunCallback(ctx, config))
            model.learn(total_timesteps=config.total_timesteps, callback=callback, log_interval=1)
            # 5. save, export, evaluate
            return runtime.finish(model, config, ctx, algorithm="PPO", env_steps=int(model.num_timesteps),
                                  env_episodes=runtime.count_episodes(venv))
