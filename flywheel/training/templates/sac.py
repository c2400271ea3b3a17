"""SAC (Stable-Baselines3): off-policy maximum-entropy actor-critic for continuous (Box) actions.

The recipe, top to bottom: seed and write ``config.json``; build the training env (a task with discrete
actions is refused before training); build ``SAC`` (actor and twin critics with ``net_arch``); load
``inputs.init_checkpoint`` if given; learn, logging ``charts/``, ``losses/`` and ``eval/`` metrics and
TensorBoard events; save ``model.zip``, export ``model.onnx`` (the tanh-squashed mean rescaled to the action
space, what ``predict(deterministic=True)`` answers), evaluate the exported actor.

Example:
    >>> SACConfig(ent_coef=0.1).ent_coef
    0.1
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from flywheel.errors import InvalidInput
from flywheel.training.base import RunContext, RunResult, Template
from flywheel.training.templates.common import RLConfig, wrapper_kwargs


class SACConfig(RLConfig):
    """SAC hyperparameters (Stable-Baselines3 names)."""

    learning_rate: float = Field(3e-4, gt=0, le=1, description="Adam learning rate (actor, critics, entropy).")
    buffer_size: int = Field(100_000, ge=100, le=10_000_000, description="Replay buffer capacity (transitions).")
    learning_starts: int = Field(1_000, ge=0, le=10**9, description="Random steps before learning starts.")
    batch_size: int = Field(256, ge=1, le=65_536, description="Minibatch size.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak rate of the target critics.")
    train_freq: int = Field(1, ge=1, le=10_000, description="Environment steps between gradient updates.")
    gradient_steps: int = Field(1, ge=1, le=1_000, description="Gradient steps per update.")
    ent_coef: Literal["auto"] | float = Field(
        "auto", description="Entropy coefficient: 'auto' learns it towards target_entropy, or a fixed value > 0.")

    @field_validator("ent_coef")
    @classmethod
    def _ent_coef_range(cls, value: str | float) -> str | float:
        if not isinstance(value, str) and not 0 < value <= 10:
            raise ValueError("must be 'auto' or in (0, 10]")
        return value


def make_model(config: SACConfig, venv: Any) -> Any:
    """The SAC model a config describes, on ``venv`` (which must have Box actions)."""
    from gymnasium import spaces
    from stable_baselines3 import SAC

    if not isinstance(venv.action_space, spaces.Box):
        raise InvalidInput(f"SAC needs continuous actions, {config.env_id} has {venv.action_space}",
                           field="config.env_id", allowed="a task with Box actions")
    return SAC(
        "MlpPolicy", venv,
        learning_rate=config.learning_rate, buffer_size=config.buffer_size, learning_starts=config.learning_starts,
        batch_size=config.batch_size, gamma=config.gamma, tau=config.tau, train_freq=config.train_freq,
        gradient_steps=config.gradient_steps, ent_coef=config.ent_coef,
        policy_kwargs={"net_arch": list(config.net_arch)}, seed=config.seed, device="cpu", verbose=0,
    )


class SACTemplate(Template):
    """Soft Actor-Critic on continuous actions."""

    id = "sac"
    version = 1
    description = "SAC (Stable-Baselines3): off-policy maximum-entropy actor-critic, Box actions."
    config_model = SACConfig

    def run(self, config: SACConfig, ctx: RunContext) -> RunResult:  # type: ignore[override]
        """Train SAC from ``config`` (optionally from ``ctx.inputs.init_checkpoint``) and evaluate it."""
        from flywheel.training.envs import make_vec_env
        from flywheel.training.templates import runtime

        # 1. seeds, threads, config.json
        runtime.start_run(config, ctx)
        with runtime.Resources() as keep:  # envs, logger and callback are closed however the run ends
            # 2. environment
            venv = keep(make_vec_env(config.env_id, config.env_kwargs, n_envs=1, seed=config.seed,
                                     **wrapper_kwargs(config)))
            # 3. model (refused for discrete actions), optionally initialised from a checkpoint
            model = make_model(config, venv)
            runtime.load_init_checkpoint(model, ctx)
            model.set_logger(keep(runtime.sb3_logger(ctx)))
            # 4. learn (logs after every episode), stop early on ctx.should_stop()
            callback = keep(runtime.RunCallback(ctx, config))
            model.learn(total_timesteps=config.total_timesteps, callback=callback, log_interval=1)
            # 5. save, export, evaluate
            return runtime.finish(model, config, ctx, algorithm="SAC", env_steps=int(model.num_timesteps),
                                  env_episodes=runtime.count_episodes(venv))
