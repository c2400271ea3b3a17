"""DQN (Stable-Baselines3) on discretised actions: ``DiscretizeAction(n_steer, n_throttle)`` over a 2-D Box.

The recipe, top to bottom: seed and write ``config.json``; build the training env wrapped in
``DiscretizeAction`` (a task without a 2-D bounded Box action is refused before training); build ``DQN``
(Q-network with ``net_arch``); load ``inputs.init_checkpoint`` if given; learn with ε-greedy exploration,
logging ``charts/``, ``losses/`` and ``eval/`` metrics and TensorBoard events; save ``model.zip``, export
``model.onnx`` (argmax Q, an int64 index), evaluate on the same discretisation.

Example:
    >>> DQNConfig(n_steer=7).n_steer
    7
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from flywheel.training.base import RunContext, RunResult, Template
from flywheel.training.templates.common import RLConfig, wrapper_kwargs


class DQNConfig(RLConfig):
    """DQN hyperparameters (Stable-Baselines3 names) and the action discretisation."""

    n_steer: int = Field(5, ge=2, le=21, description="Steering values of DiscretizeAction (odd keeps straight).")
    n_throttle: int = Field(3, ge=2, le=11, description="Throttle values of DiscretizeAction.")
    learning_rate: float = Field(5e-4, gt=0, le=1, description="Adam learning rate.")
    buffer_size: int = Field(100_000, ge=100, le=10_000_000, description="Replay buffer capacity (transitions).")
    learning_starts: int = Field(1_000, ge=0, le=10**9, description="Random steps before learning starts.")
    batch_size: int = Field(64, ge=1, le=65_536, description="Minibatch size.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    tau: float = Field(1.0, gt=0, le=1, description="Target-network update rate (1 = hard copy).")
    train_freq: int = Field(4, ge=1, le=10_000, description="Environment steps between gradient updates.")
    gradient_steps: int = Field(1, ge=1, le=1_000, description="Gradient steps per update.")
    target_update_interval: int = Field(1_000, ge=1, le=10**9, description="Steps between target-network updates.")
    exploration_fraction: float = Field(0.2, gt=0, le=1, description="Fraction of training over which ε decays.")
    exploration_initial_eps: float = Field(1.0, ge=0, le=1, description="Initial ε.")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="Final ε.")

    @field_validator("exploration_final_eps")
    @classmethod
    def _eps_decreases(cls, value: float, info: ValidationInfo) -> float:
        if value > info.data.get("exploration_initial_eps", 1.0):
            raise ValueError("must not exceed exploration_initial_eps")
        return value

    @property
    def discretize(self) -> tuple[int, int]:
        """The ``(n_steer, n_throttle)`` of the training and evaluation envs."""
        return self.n_steer, self.n_throttle


def make_model(config: DQNConfig, venv: Any) -> Any:
    """The DQN model a config describes, on ``venv``."""
    from stable_baselines3 import DQN

    return DQN(
        "MlpPolicy", venv,
        learning_rate=config.learning_rate, buffer_size=config.buffer_size, learning_starts=config.learning_starts,
        batch_size=config.batch_size, gamma=config.gamma, tau=config.tau, train_freq=config.train_freq,
        gradient_steps=config.gradient_steps, target_update_interval=config.target_update_interval,
        exploration_fraction=config.exploration_fraction, exploration_initial_eps=config.exploration_initial_eps,
        exploration_final_eps=config.exploration_final_eps,
        policy_kwargs={"net_arch": list(config.net_arch)}, seed=config.seed, device="cpu", verbose=0,
    )


class DQNTemplate(Template):
    """Deep Q-learning on a discretised (steer, throttle) action space."""

    id = "dqn"
    version = 1
    description = "DQN (Stable-Baselines3) on DiscretizeAction(n_steer, n_throttle) actions."
    config_model = DQNConfig

    def run(self, config: DQNConfig, ctx: RunContext) -> RunResult:  # type: ignore[override]
        """Train DQN from ``config`` (optionally from ``ctx.inputs.init_checkpoint``) and evaluate it."""
        from flywheel.training.envs import make_vec_env
        from flywheel.training.templates import runtime

        # 1. seeds, threads, config.json
        runtime.start_run(config, ctx)
        with runtime.Resources() as keep:  # envs, logger and callback are closed however the run ends
            # 2. the discretised environment (refused here if the task's actions are not a 2-D Box)
            venv = keep(make_vec_env(config.env_id, config.env_kwargs, n_envs=1, seed=config.seed,
                                     discretize=config.discretize, **wrapper_kwargs(config)))
            # 3. model, optionally initialised from a checkpoint
            model = make_model(config, venv)
            runtime.load_init_checkpoint(model, ctx)
            model.set_logger(keep(runtime.sb3_logger(ctx)))
            # 4. learn (logs after every episode), stop early on ctx.should_stop()
            callback = keep(runtime.RunCallback(ctx, config, discretize=config.discretize))
            model.learn(total_timesteps=config.total_timesteps, callback=callback, log_interval=1)
            # 5. save, export, evaluate on the same discretisation
            return runtime.finish(model, config, ctx, algorithm="DQN", env_steps=int(model.num_timesteps),
                                  env_episodes=runtime.count_episodes(venv), discretize=config.discretize)
