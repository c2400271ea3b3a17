"""Record demonstrations: N seeded episodes of a task's scripted expert (or any policy) into a dataset folder.

The episodes are run by the one evaluation path (:func:`flywheel.training.evaluation.evaluate_env`), so a
demonstration is exactly what an evaluation records: ``observation.state`` (the observation the action was
chosen from), ``action``, ``next.reward`` and ``next.done`` per step, and the episode's ``success``. Each
episode is written with :func:`flywheel.datasets.writer.create_dataset` /
``DatasetWriter.append_episode`` as soon as it ends, with ``source="expert"`` (or ``"policy"``) and metadata
``{"seed", "return", "terminated"}``. ``terminated`` says whether the episode ended in a terminal state
(off the road) rather than a time limit; behavioural cloning uses it to bootstrap the value targets of
truncated episodes (:func:`flywheel.training.templates.bc.mc_returns`).

Episode ``i`` is reset with seed ``seed + i``; the seed is recorded in the episode's metadata.

Example:
    >>> demos = record_demos(Path("/tmp/fw-demos-doc"), "flywheel/Track-v0", {"max_steps": 50},
    ...                      episodes=2, seed=0)  # doctest: +SKIP
    >>> demos.env_episodes, demos.env_steps  # doctest: +SKIP
    (2, 100)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from flywheel.datasets.format import DEFAULT_FPS
from flywheel.datasets.records import EpisodeRecord
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput
from flywheel.training.envs import expert_for, features_for, make_env
from flywheel.training.evaluation import EXPERT, PolicyLike, evaluate_env

#: Episode metadata key: True when the episode ended in a terminal state (not a time limit).
TERMINATED = "terminated"


@dataclass
class DemoRecording:
    """What :func:`record_demos` wrote.

    Attributes:
        root: the dataset folder.
        records: the committed episode records, in order.
        env_steps: environment steps used (the frames recorded).
        env_episodes: environment episodes used.
        returns: the undiscounted return of each episode.
        success_rate: the fraction of episodes that met the task's success criterion.
        seed: episode ``i`` was reset with ``seed + i``.
    """

    root: Path
    records: list[EpisodeRecord]
    env_steps: int
    env_episodes: int
    returns: list[float] = field(default_factory=list)
    success_rate: float = 0.0
    seed: int = 0

    @property
    def mean_return(self) -> float:
        """The mean undiscounted return of the recorded episodes."""
        return float(np.mean(self.returns)) if self.returns else 0.0


class _EndFlag(gym.Wrapper):
    """Remembers whether the last step terminated (as opposed to being truncated by a time limit)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.terminated = False

    def reset(self, **kwargs: Any) -> Any:
        self.terminated = False
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self.terminated = bool(out[2])
        return out


def record_demos(
    root: Path,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    episodes: int,
    seed: int = 0,
    policy: PolicyLike = EXPERT,
    **wrapper_kwargs: Any,
) -> DemoRecording:
    """Record ``episodes`` episodes of ``policy`` (default: the task's scripted expert) into a new dataset.

    Args:
        root: a folder that holds no dataset yet; it is created.
        env_id: a registered task id (checked before anything is written).
        env_kwargs: the task's keyword arguments.
        episodes: how many episodes, ≥ 1.
        seed: episode ``i`` is reset with ``seed + i``.
        policy: ``"expert"`` (the scripted expert built on the recording env), an SB3 model, or a callable
            ``obs -> action``; it acts deterministically.
        **wrapper_kwargs: :func:`~flywheel.training.envs.make_env` wrapper arguments, e.g.
            ``discretize=(5, 3)`` to record discrete action indices.

    Returns:
        The records written and the environment steps and episodes used.

    Raises:
        InvalidInput: bad ``episodes``, env id or kwargs, or spaces a dataset cannot hold.
        Conflict: ``root`` holds a dataset already.

    Example:
        >>> rec = record_demos(Path("/tmp/fw-demos"), "flywheel/ReachyLookAt-v0", episodes=1)  # doctest: +SKIP
        >>> rec.records[0].total_frames, rec.success_rate  # doctest: +SKIP
        (100, 1.0)
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise InvalidInput(f"got {episodes!r}", field="episodes", allowed="an integer ≥ 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"got {seed!r}", field="seed", allowed="an integer ≥ 0")
    extra = tuple(wrapper_kwargs.pop("wrappers", ()))
    env = make_env(env_id, env_kwargs, wrappers=(*extra, _EndFlag), **wrapper_kwargs)
    end_flag = env
    source = "expert" if isinstance(policy, str) and policy == EXPERT else "policy"
    if source == "expert":
        policy = expert_for(env)  # built once: it reads this env's simulator
    try:
        features = features_for(env)  # refuses spaces a dataset cannot hold, before anything is written
        fps = int(env.metadata.get("render_fps") or DEFAULT_FPS)
        records: list[EpisodeRecord] = []
        returns: list[float] = []
        successes: list[bool] = []
        steps = 0
        with create_dataset(Path(root), features=features, fps=fps, robot_type=env_id) as writer:
            for i in range(episodes):
                summary = evaluate_env(policy, env, episodes=1, seed=seed + i)
                episode = summary.episodes[0]
                episode.metadata = {"seed": seed + i, "return": summary.returns[0],
                                    TERMINATED: bool(end_flag.terminated)}
                records.append(writer.append_episode(episode, source=source))
                returns.append(summary.returns[0])
                successes.append(summary.success_rate == 1.0)
                steps += summary.lengths[0]
    finally:
        env.close()
    return DemoRecording(root=Path(root), records=records, env_steps=steps, env_episodes=episodes,
                         returns=returns, success_rate=float(np.mean(successes)), seed=seed)
