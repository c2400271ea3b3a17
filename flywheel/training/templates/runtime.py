"""What every template does the same way at run time: seeding, config.json, metrics, stopping, finishing, closing.

A template module reads top to bottom (config → env → model → learn → :func:`finish`) and calls these
helpers for the parts that must not differ between recipes:

- :class:`Resources`: the ``with`` block a run's body sits in; everything handed to ``keep(…)`` (envs, the SB3
  logger, the :class:`RunCallback`) is closed when the run ends, whether it returns or raises.
- :func:`start_run`: threads, seeds (Python, numpy, torch), ``config.json`` in the workdir.
- :func:`sb3_logger`: Stable-Baselines3's logger writing TensorBoard files under ``workdir/tensorboard`` and
  every dump to ``ctx.log_metrics`` with namespaced keys (``train/…`` → ``losses/…``, ``rollout/…`` and
  ``time/…`` → ``charts/…``, ``eval/…`` kept).
- :class:`RunCallback`: honours ``ctx.should_stop`` (polled at most every ``STOP_POLL_SECONDS``), counts
  episodes, and evaluates every ``eval_every`` steps into ``eval/…`` metrics.
- :func:`load_init_checkpoint`: start from ``ctx.inputs.init_checkpoint`` (any ``model.zip`` whose network
  matches, e.g. a BC-trained ``PPO`` policy for BC→PPO).
- :func:`finish`: save ``model.zip``, export ``model.onnx``, evaluate the exported actor (and the training env
  too when the evaluation env differs, for the generalisation gap), return the :class:`RunResult`.

Templates that do not train with SB3's ``learn`` (BC, DAgger) still build an SB3 model (e.g. a ``PPO`` whose
``ActorCriticPolicy`` they fit by regression) so that :func:`finish` saves, exports and evaluates it the same way.

Example:
    >>> from flywheel.training.base import RunContext
    >>> metrics = []
    >>> ctx = RunContext(Path("/tmp"), report=lambda step, m: metrics.append(m))
    >>> MetricsWriter(ctx).write({"train/value_loss": 0.5, "time/fps": 900, "x": "text"}, {}, step=64)
    >>> metrics
    [{'losses/value_loss': 0.5, 'charts/fps': 900.0}]
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat

from flywheel.durable import write_atomic
from flywheel.errors import InvalidInput
from flywheel.training.base import EvalSummary, RunContext, RunResult, TemplateConfig
from flywheel.training.envs import make_env
from flywheel.training.evaluation import evaluate, evaluate_env, generalisation_gap
from flywheel.training.onnx_export import export_onnx, onnx_policy
from flywheel.training.templates.common import safety_config

STOP_POLL_SECONDS = 0.5
#: SB3 logger prefix -> Flywheel metric namespace.
NAMESPACES = {"train/": "losses/", "rollout/": "charts/", "time/": "charts/", "eval/": "eval/"}
CHECKPOINT = "model.zip"
ONNX = "model.onnx"
CONFIG = "config.json"
TENSORBOARD = "tensorboard"


class Closeable(Protocol):
    """Anything a run opens and must release: an env, a vec env, the SB3 logger, a :class:`RunCallback`."""

    def close(self) -> None: ...


C = TypeVar("C", bound=Closeable)


class Resources:
    """What a run opened, closed in reverse order when its ``with`` block ends, whether it returns or raises.

    A run that raises (a checkpoint that does not fit, an env that crashes, a ``KeyboardInterrupt``) must not
    leave a TensorBoard writer thread, an open event file or envs behind in a process that goes on (``flywheel
    train``, in-process autoresearch trials, tests). ``keep(x)`` returns ``x`` and closes it at the end;
    ``keep.close(x)`` closes one early (an env only needed to check the inputs). Closing adds nothing per step.

    When the run raised, its exception is the one that propagates; a ``close`` failing on the way is added to
    it as a note. When the run returned, the first ``close`` that fails raises (after the others are closed).

    Example:
        >>> from flywheel.training.envs import make_env, make_vec_env
        >>> with Resources() as keep:
        ...     venv = keep(make_vec_env("flywheel/Track-v0"))
        ...     env = keep(make_env("flywheel/Track-v0"))
        ...     keep.close(env)  # done with it: closed now, not again at the end
        ...     venv.num_envs
        1
    """

    def __init__(self) -> None:
        self._open: list[Closeable] = []

    def __call__(self, resource: C) -> C:
        """Close ``resource`` when the run ends; return it."""
        self._open.append(resource)
        return resource

    def close(self, resource: Closeable) -> None:
        """Close ``resource`` now rather than at the end of the run."""
        self._open = [kept for kept in self._open if kept is not resource]
        resource.close()

    def __enter__(self) -> Resources:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        failed: Exception | None = None
        while self._open:
            resource = self._open.pop()
            try:
                resource.close()
            except Exception as error:  # close the rest; never hide the run's own exception
                blamed = exc if exc is not None else failed
                if blamed is None:
                    failed = error
                else:
                    blamed.add_note(f"closing {type(resource).__name__} also failed: {error!r}")
        if failed is not None:
            raise failed


def start_run(config: TemplateConfig, ctx: RunContext) -> None:
    """Set torch's threads, seed every generator with ``config.seed`` and write ``config.json``."""
    torch.set_num_threads(config.torch_threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    write_atomic(ctx.workdir / CONFIG, json.dumps(config.model_dump(mode="json"), indent=2).encode())



class MetricsWriter(KVWriter):
    """An SB3 ``KVWriter`` that forwards each logger dump to ``ctx.log_metrics`` under Flywheel namespaces."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        metrics: dict[str, float] = {}
        for key, value in key_values.items():
            for prefix, namespace in NAMESPACES.items():
                if key.startswith(prefix) and isinstance(value, int | float | np.number) and np.isfinite(value):
                    metrics[namespace + key[len(prefix):]] = float(value)
        if metrics:
            self.ctx.log_metrics(int(step), metrics)

    def close(self) -> None:
        """Nothing to release (``ctx.log_metrics`` opens its file per line)."""


def sb3_logger(ctx: RunContext) -> Logger:
    """An SB3 ``Logger`` writing TensorBoard events to ``workdir/tensorboard`` and metrics to ``ctx``.

    Its ``close`` ends TensorBoard's writer thread and event file: templates hand it to :class:`Resources`.
    """
    folder = ctx.workdir / TENSORBOARD
    folder.mkdir(parents=True, exist_ok=True)
    return Logger(str(folder), [TensorBoardOutputFormat(str(folder)), MetricsWriter(ctx)])


class RunCallback(BaseCallback):
    """Stops training when ``ctx.should_stop()``, counts episodes, evaluates every ``eval_every`` steps.

    Args:
        ctx: the run context.
        config: the template config (``env_id``, ``eval_env_kwargs``, ``eval_episodes``, ``eval_every``).
        eval_wrappers: wrapper arguments the evaluation env needs (``discretize=`` for DQN).
    """

    def __init__(self, ctx: RunContext, config: TemplateConfig, **eval_wrappers: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.config = config
        self.eval_wrappers = eval_wrappers
        self.episodes = 0
        self.stopped = False
        self._next_poll = 0.0
        self._next_eval = int(getattr(config, "eval_every", 0) or 0)
        self._eval_env: Any = None

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        if dones is not None and dones.any():  # off-policy algorithms dump their logs right after an episode
            self.episodes += int(dones.sum())
            self.logger.record("rollout/episodes", self.episodes)
        if self._next_eval and self.num_timesteps >= self._next_eval:
            self._next_eval += self.config.eval_every
            self._evaluate()
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + STOP_POLL_SECONDS
            if self.ctx.should_stop():
                self.stopped = True
                return False
        return True

    def _evaluate(self) -> None:
        config = self.config
        if self._eval_env is None:
            self._eval_env = make_env(config.env_id, config.eval_env_kwargs or config.env_kwargs,
                                      **self.eval_wrappers)
        summary = evaluate_env(self.model, self._eval_env, episodes=min(config.eval_episodes, 5),
                               seed=config.seed + 1_000_000, record=False)
        self.ctx.log_metrics(self.num_timesteps, {**eval_metrics(summary), "charts/episodes": float(self.episodes)})

    def _on_rollout_end(self) -> None:
        self.logger.record("rollout/episodes", self.episodes)  # on-policy algorithms dump after each rollout

    def _on_training_end(self) -> None:
        self.logger.dump(step=self.num_timesteps)  # the last update's losses (PPO dumps before training)
        self.close()

    def close(self) -> None:
        """Close the evaluation env, if one was built (at the end of training, or of a run that raised)."""
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None


def eval_metrics(summary: EvalSummary, prefix: str = "eval/") -> dict[str, float]:
    """The ``eval/…`` metrics of a summary: mean/std return, success rate, mean length, task metrics.

    With a safety layer (``safety_incidents`` counted) also ``{prefix}safety/violation_rate``: incidents / steps.
    """
    metrics = {
        f"{prefix}mean_return": summary.mean_return,
        f"{prefix}std_return": summary.std_return,
        f"{prefix}success_rate": summary.success_rate,
        f"{prefix}mean_length": float(np.mean(summary.lengths)),
        **{f"{prefix}{k}": v for k, v in summary.task_metrics.items()},
    }
    if "safety_incidents" in summary.task_metrics:
        steps = max(int(np.sum(summary.lengths)), 1)
        metrics[f"{prefix}safety/violation_rate"] = summary.task_metrics["safety_incidents"] / steps
    return metrics


def safety_metrics(model: Any) -> dict[str, float]:
    """``safety/violation_rate`` (and ``safety/actions``, ``safety/violating_actions``) of the training envs.

    Empty when the training env has no safety layer (see :func:`~flywheel.training.templates.common.safety_config`).
    """
    from flywheel.safety.counting import vec_safety_stats

    stats = vec_safety_stats(model.get_env()) if hasattr(model, "get_env") else None
    if stats is None:
        return {}
    return {"safety/violation_rate": stats.violation_rate, "safety/actions": float(stats.actions),
            "safety/violating_actions": float(stats.violating_actions)}


def load_init_checkpoint(model: Any, ctx: RunContext) -> None:
    """Load ``ctx.inputs.init_checkpoint`` (a ``model.zip``) into ``model``'s networks, if one is given.

    Raises:
        InvalidInput: the file is missing or its networks do not match the config (``inputs.init_checkpoint``).
    """
    path = ctx.inputs.init_checkpoint
    if path is None:
        return
    if not Path(path).is_file():
        raise InvalidInput(f"{path} does not exist", field="inputs.init_checkpoint", allowed="a model.zip file")
    try:
        model.set_parameters(str(path), exact_match=True, device="cpu")
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InvalidInput(f"does not fit this model: {exc}".splitlines()[0], field="inputs.init_checkpoint",
                           allowed="a checkpoint of the same algorithm, spaces and net_arch") from exc


def count_episodes(venv: Any) -> int:
    """Episodes started in a vec env of ``Monitor``-wrapped envs (finished ones plus those under way)."""
    total = 0
    for env in getattr(venv, "envs", []):
        total += len(env.get_episode_rewards()) + (1 if env.rewards else 0)
    return total


def finish(model: Any, config: TemplateConfig, ctx: RunContext, *, algorithm: str, env_steps: int,
           env_episodes: int, **eval_wrappers: Any) -> RunResult:
    """Save ``model.zip``, export ``model.onnx``, evaluate the exported actor and return the result.

    The evaluation runs ``config.eval_episodes`` episodes on ``config.eval_env_kwargs`` (default the training
    kwargs) with seeds from ``config.seed + 1_000_000`` (never the training seeds). When the evaluation env
    differs from the training env, the training env is evaluated too and ``eval/generalisation_gap`` logged.
    """
    workdir = ctx.workdir
    tmp = workdir / f".{CHECKPOINT}.tmp.zip"
    model.save(str(tmp))
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    checkpoint = tmp.replace(workdir / CHECKPOINT)
    onnx = export_onnx(model, workdir / ONNX)
    policy = onnx_policy(onnx)
    seed = config.seed + 1_000_000
    eval_kwargs = config.eval_env_kwargs if config.eval_env_kwargs is not None else config.env_kwargs
    eval_wrappers = {"safety": safety_config(config, evaluation=True), **eval_wrappers}
    summary = evaluate(policy, config.env_id, eval_kwargs, episodes=config.eval_episodes, seed=seed,
                       **eval_wrappers)
    metrics = {**safety_metrics(model), **eval_metrics(summary)}
    if eval_kwargs != config.env_kwargs:
        train = evaluate(policy, config.env_id, config.env_kwargs, episodes=config.eval_episodes, seed=seed,
                         record=False, **eval_wrappers)
        metrics.update(eval_metrics(train, prefix="eval/train_env_"))
        metrics["eval/generalisation_gap"] = generalisation_gap(train, summary)
    ctx.log_metrics(env_steps, metrics)
    return RunResult(
        checkpoint=checkpoint,
        algorithm=algorithm,
        onnx=onnx,
        evaluation=summary,
        env_steps=env_steps,
        env_episodes=env_episodes,
        extra_files={"tensorboard": workdir / TENSORBOARD, "config": workdir / CONFIG},
    )
