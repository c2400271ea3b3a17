"""The one evaluation path: run a policy for N seeded episodes and summarise them honestly.

The semantics are Stable-Baselines3's ``evaluate_policy`` (undiscounted episode returns, mean and std over
episodes, ``info["is_success"]`` at the last step for the success rate), for *any* policy: an SB3 model
(``model.predict(obs, deterministic=…)``), an ONNX policy, a scripted expert, or any ``obs -> action``
callable. Episode ``i`` is reset with seed ``seed + i``, so two policies evaluated with the same seed meet
the same episodes.

Task metrics are read from ``info`` whenever the task publishes them:

- Reachy (``pointing_error_deg``): ``pointing_error_deg`` (mean over steps), ``jerk`` (mean over steps,
  rad/s³), ``energy`` (J per episode, from ``episode_energy``).
- cars (``cte``, ``speed``): ``mean_abs_cte`` (m), ``mean_speed`` (m/s), ``laps`` (mean per episode) and
  ``lap_time`` (s, mean of the last completed lap over episodes that completed one; absent if none did).
- any task: ``safety_incidents`` (steps whose ``info["safety_violation"]`` is true), if the key appears.

Each episode is recorded as :class:`~flywheel.datasets.episode.EpisodeArrays` with ``observation.state``
(the observation the action was chosen from), ``action``, ``next.reward`` and ``next.done``, matching
:func:`flywheel.training.envs.features_for`, so the runner can store the evaluation as a dataset.

``policy="expert"`` evaluates the task's scripted expert (:func:`~flywheel.training.envs.expert_for`) on the
evaluation env itself (experts read the simulator, so they must be built on the env they drive).

Example:
    >>> summary = evaluate("expert", "flywheel/Track-v0", {"track": "warehouse", "max_steps": 200},
    ...                    episodes=2, seed=0)
    >>> summary.lengths, summary.task_metrics["mean_speed"] > 1.0
    ([200, 200], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flywheel.datasets.episode import EpisodeArrays
from flywheel.errors import InvalidInput
from flywheel.training.base import EvalSummary
from flywheel.training.envs import expert_for, features_for, make_env

#: Pass as ``policy`` to evaluate the task's scripted expert.
EXPERT = "expert"

PolicyLike = Any  # an SB3 model (has .predict), or a callable obs -> action
Policy = Callable[[np.ndarray], Any]


def as_policy(policy: PolicyLike, *, deterministic: bool = True) -> Policy:
    """Normalise a policy once, at the boundary, into ``obs -> action``.

    SB3 models (anything with ``predict(obs, deterministic=…)`` returning ``(action, state)``) are called
    through ``predict``; other callables are returned as they are.

    Raises:
        InvalidInput: ``policy`` is neither (``field="policy"``).

    Example:
        >>> as_policy(lambda obs: obs * 2)(np.ones(2)).tolist()
        [2.0, 2.0]
    """
    predict = getattr(policy, "predict", None)
    if callable(predict):
        return lambda obs: predict(obs, deterministic=deterministic)[0]
    if callable(policy):
        return policy
    raise InvalidInput(f"got {type(policy).__name__}", field="policy",
                       allowed="an SB3 model or a callable obs -> action")


def evaluate(
    policy: PolicyLike,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
    record: bool = True,
    **wrapper_kwargs: Any,
) -> EvalSummary:
    """Evaluate ``policy`` on ``episodes`` fresh episodes of ``env_id`` (see the module docstring).

    Args:
        policy: an SB3 model, a callable ``obs -> action`` (in the wrapped env's action space), or
            ``"expert"`` for the task's scripted expert.
        env_id: a registered id; checked before anything runs.
        env_kwargs: keyword arguments of the task.
        episodes: number of episodes, ≥ 1.
        seed: episode ``i`` is reset with ``seed + i``.
        deterministic: passed to SB3's ``predict``.
        record: keep every episode as ``EpisodeArrays`` in ``summary.episodes``.
        **wrapper_kwargs: :func:`~flywheel.training.envs.make_env` wrapper arguments (``discretize=(5, 3)``
            to evaluate a DQN). Evaluation normally uses the task's own reward (no ``speed_reward``).

    Example:
        >>> summary = evaluate(lambda obs: np.array([0.0, 0.3]), "flywheel/Track-v0", {"max_steps": 50},
        ...                    episodes=2, seed=0)
        >>> summary.lengths, len(summary.episodes), summary.episodes[0].columns["action"].shape
        ([50, 50], 2, (50, 2))
    """
    env = make_env(env_id, env_kwargs, **wrapper_kwargs)
    try:
        return evaluate_env(policy, env, episodes=episodes, seed=seed, deterministic=deterministic, record=record)
    finally:
        env.close()


def evaluate_env(policy: PolicyLike, env: gym.Env, *, episodes: int = 10, seed: int = 0,
                 deterministic: bool = True, record: bool = True) -> EvalSummary:
    """:func:`evaluate` on an env you built (e.g. for an expert that reads that env's simulator).

    Policies with a ``reset()`` method (experts, recurrent wrappers) are reset before every episode.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise InvalidInput(f"got {episodes!r}", field="episodes", allowed="an integer ≥ 1")
    if isinstance(policy, str) and policy == EXPERT:
        policy = expert_for(env)
    act = as_policy(policy, deterministic=deterministic)
    reset = getattr(policy, "reset", None)
    features = features_for(env) if record else {}  # refuse spaces a dataset cannot hold before running
    task = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    discrete = isinstance(env.action_space, spaces.Discrete)
    metrics = _TaskMetrics()
    returns: list[float] = []
    lengths: list[int] = []
    successes: list[bool] = []
    recorded: list[EpisodeArrays] = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        if callable(reset):
            reset()
        observations, actions, rewards = [], [], []
        total, done = 0.0, False
        while not done:
            action = act(obs)
            if record:
                observations.append(np.asarray(obs, dtype=np.float32))
                actions.append(int(np.asarray(action).reshape(-1)[0]) if discrete
                               else np.asarray(action, dtype=np.float32).reshape(-1))
            obs, reward, terminated, truncated, info = env.step(action)
            done = bool(terminated or truncated)
            total += float(reward)
            rewards.append(float(reward))
            metrics.step(info)
        metrics.end(info)
        returns.append(total)
        lengths.append(len(rewards))
        successes.append(bool(info.get("is_success", False)))
        if record:
            dones = np.zeros(len(rewards), dtype=bool)
            dones[-1] = True
            recorded.append(EpisodeArrays(
                columns={
                    "observation.state": np.stack(observations),
                    "action": (np.array(actions, dtype=np.int64).reshape(-1, 1) if discrete
                               else np.stack(actions)),
                    "next.reward": np.array(rewards, dtype=np.float32),
                    "next.done": dones,
                },
                task=task,
                success=successes[-1],
                metadata={"source": "evaluation", "seed": seed + i, "return": total},
            ))
    return EvalSummary(
        mean_return=float(np.mean(returns)),
        std_return=float(np.std(returns)),
        returns=returns,
        lengths=lengths,
        success_rate=float(np.mean(successes)),
        task_metrics=metrics.summary(),
        episodes=recorded,
        features=features,
    )


def generalisation_gap(train_summary: EvalSummary, eval_summary: EvalSummary) -> float:
    """Train-environment mean return minus eval-environment mean return (positive = worse away from home).

    Example:
        >>> a = EvalSummary(100.0, 0.0, [100.0], [10], 1.0)
        >>> b = EvalSummary(40.0, 0.0, [40.0], [10], 0.0)
        >>> generalisation_gap(a, b)
        60.0
    """
    return float(train_summary.mean_return - eval_summary.mean_return)


class _TaskMetrics:
    """Accumulates the task metrics the env's ``info`` publishes (see the module docstring)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.episodes = 0
        self.energy: list[float] = []
        self.laps: list[float] = []
        self.lap_times: list[float] = []
        self.incidents: int | None = None

    def step(self, info: dict[str, Any]) -> None:
        self.steps += 1
        sums = self.sums
        for key, name, fn in _STEP_KEYS:
            if key in info:
                sums[name] = sums.get(name, 0.0) + fn(float(info[key]))
        if "safety_violation" in info:
            self.incidents = (self.incidents or 0) + int(bool(info["safety_violation"]))

    def end(self, info: dict[str, Any]) -> None:
        self.episodes += 1
        if "episode_energy" in info:
            self.energy.append(float(info["episode_energy"]))
        if "lap_count" in info:
            self.laps.append(float(info["lap_count"]))
            if info["lap_count"] >= 1 and info.get("lap_time", 0.0) > 0:
                self.lap_times.append(float(info["lap_time"]))

    def summary(self) -> dict[str, float]:
        out = {name: total / max(self.steps, 1) for name, total in self.sums.items()}
        if self.energy:
            out["energy"] = float(np.mean(self.energy))
        if self.laps:
            out["laps"] = float(np.mean(self.laps))
        if self.lap_times:
            out["lap_time"] = float(np.mean(self.lap_times))
        if self.incidents is not None:
            out["safety_incidents"] = float(self.incidents)
        return {k: v for k, v in out.items() if math.isfinite(v)}


#: info key -> (metric name, per-step transform); metrics are means over all evaluated steps.
_STEP_KEYS: tuple[tuple[str, str, Callable[[float], float]], ...] = (
    ("pointing_error_deg", "pointing_error_deg", float),
    ("jerk", "jerk", float),
    ("cte", "mean_abs_cte", abs),
    ("speed", "mean_speed", float),
)
