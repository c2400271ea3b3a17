"""Environments for training and evaluation: one factory, one expert protocol, one feature declaration.

Every template and the evaluation build their environments here, so an unknown env id, a bad keyword
argument or a wrapper that does not fit the task is refused the same way everywhere, before any work
starts (:class:`~flywheel.errors.InvalidInput` naming the field and the allowed values).

- :func:`make_env` builds one seeded env with the optional Flywheel wrappers, in a fixed order:
  ``DomainRandomization`` → ``Curriculum`` → ``SpeedReward`` → ``SafetyWrapper`` → ``DiscretizeAction``.
- :func:`make_vec_env` builds a seeded :class:`~flywheel.training.vec_env.StepVecEnv` (SB3's ``DummyVecEnv``
  without its per-step deep copy of infos) of those (each with a ``Monitor``);
  a safety layer that only counts is counted for the whole vec env at once.
- :func:`expert_for` returns the scripted expert of any Flywheel task behind one protocol,
  :class:`Expert`: ``expert(obs) -> action`` in the *wrapped* env's action space (a discrete index after
  ``DiscretizeAction``). It reads the simulator's state, so it labels whatever state the env is in: DAgger
  steps the env with the learner's actions and calls the expert once per step to label the visited states.
- :func:`features_for` declares an env's spaces as dataset features (``observation.state``, ``action``), so
  recorded episodes and datasets are checked against the env they are used with.

Example:
    >>> env = make_env("flywheel/Track-v0", {"track": "warehouse"}, seed=0)
    >>> expert = expert_for(env)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(expert(obs))
    >>> round(float(info["speed"]), 2) > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import flywheel.envs  # noqa: F401  (registers the flywheel/ ids)
from flywheel.envs.wrappers import Curriculum, DiscretizeAction, DomainRandomization, SpeedReward
from flywheel.errors import InvalidInput

if TYPE_CHECKING:
    from flywheel.safety.config import SafetyConfig

NAMESPACE = "flywheel/"
WrapperFn = Callable[[gym.Env], gym.Env]


def registered_ids() -> list[str]:
    """Every registered ``flywheel/…`` environment id, sorted.

    Example:
        >>> "flywheel/ReachyLookAt-v0" in registered_ids()
        True
    """
    return sorted(env_id for env_id in gym.registry if env_id.startswith(NAMESPACE))


def check_env_id(env_id: Any, *, field: str = "env_id") -> str:
    """Return ``env_id`` if Gymnasium knows it, else raise InvalidInput listing the flywheel/ ids.

    Ids outside the ``flywheel/`` namespace (e.g. ``CartPole-v1``) are accepted when registered.

    Example:
        >>> check_env_id("flywheel/Nope-v0")
        Traceback (most recent call last):
        ...
        flywheel.errors.InvalidInput: env_id: unknown environment 'flywheel/Nope-v0' (allowed: [...])
    """
    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise InvalidInput(f"unknown environment {env_id!r}", field=field, allowed=registered_ids(),
                           hint="use one of the flywheel/ ids (or any registered Gymnasium id)")
    return env_id


def _bare_message(exc: InvalidInput) -> str:
    """The message of ``exc`` without the ``field: `` prefix and ``(allowed: …)`` suffix it was built with."""
    text = exc.message
    if exc.field and text.startswith(f"{exc.field}: "):
        text = text[len(exc.field) + 2:]
    suffix = f" (allowed: {exc.allowed})"
    return text[: -len(suffix)] if exc.allowed is not None and text.endswith(suffix) else text


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    seed: int | None = None,
    discretize: tuple[int, int] | None = None,
    speed_reward: bool = False,
    domain_randomization: dict[str, Any] | None = None,
    curriculum: dict[str, Any] | None = None,
    safety: Any = None,
    wrappers: Sequence[WrapperFn] = (),
) -> gym.Env:
    """Build one environment, wrapped and seeded.

    Args:
        env_id: a registered id (see :func:`registered_ids`).
        env_kwargs: keyword arguments for ``gym.make`` (e.g. ``{"track": "mountain"}``).
        seed: seeds the env (first ``reset``) and its action space; ``None`` leaves them unseeded.
        discretize: ``(n_steer, n_throttle)`` for :class:`DiscretizeAction` (DQN), or ``None``.
        speed_reward: wrap in :class:`SpeedReward` (the task reward goes to ``info["task_reward"]``).
        domain_randomization: keyword arguments of :class:`DomainRandomization`, or ``None``.
        curriculum: keyword arguments of :class:`Curriculum` (``{}`` for its defaults), or ``None``.
        safety: a :class:`~flywheel.safety.config.SafetyConfig` (or its dict) for
            :class:`~flywheel.safety.wrapper.SafetyWrapper` (under ``DiscretizeAction``), or ``None``.
        wrappers: more wrappers, applied last, in order.

    Raises:
        InvalidInput: unknown ``env_id``, a keyword argument the task refuses (``env_kwargs.<name>``), or a
            wrapper that does not fit the task.

    Example:
        >>> env = make_env("flywheel/Track-v0", {"track": "mountain"}, seed=1, discretize=(5, 3))
        >>> env.action_space
        Discrete(15)
        >>> make_env("flywheel/Track-v0", {"colour": "red"})
        Traceback (most recent call last):
        ...
        flywheel.errors.InvalidInput: env_kwargs: ...
    """
    check_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    try:
        env = gym.make(env_id, **kwargs)
    except InvalidInput as exc:
        raise InvalidInput(_bare_message(exc), field=f"env_kwargs.{exc.field}" if exc.field else "env_kwargs",
                           allowed=exc.allowed, hint=exc.hint) from exc
    except TypeError as exc:
        raise InvalidInput(f"{env_id} does not accept these arguments: {exc}", field="env_kwargs",
                           allowed="the task's constructor arguments") from exc
    if domain_randomization is not None:
        env = DomainRandomization(env, **{"seed": seed, **domain_randomization})
    if curriculum is not None:
        env = Curriculum(env, **curriculum)
    if speed_reward:
        env = SpeedReward(env)
    if safety is not None:
        from flywheel.safety.wrapper import wrap_safety

        env = wrap_safety(env, safety)
    if discretize is not None:
        env = DiscretizeAction(env, *discretize)
    for wrap in wrappers:
        env = wrap(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_vec_env(env_id: str, env_kwargs: dict[str, Any] | None = None, *, n_envs: int = 1, seed: int = 0,
                 **wrapper_kwargs: Any) -> Any:
    """A :class:`~flywheel.training.vec_env.StepVecEnv` of ``n_envs`` :func:`make_env` envs, each in a ``Monitor``.

    Env ``i`` is seeded with ``seed + i``. ``wrapper_kwargs`` are :func:`make_env`'s wrapper arguments. A
    ``safety`` config that only counts (``mode="monitor"``, ``penalty_weight=0``) is counted for the whole vec
    env in batches (:class:`~flywheel.safety.counting.VecSafetyCounter`) instead of by a ``SafetyWrapper`` in
    every copy: same figures, a fraction of the cost.

    Example:
        >>> venv = make_vec_env("flywheel/Track-v0", n_envs=2, seed=0)
        >>> venv.num_envs, venv.reset().shape
        (2, (2, 13))
    """
    from stable_baselines3.common.monitor import Monitor

    from flywheel.safety.config import parse_safety_config
    from flywheel.training.vec_env import StepVecEnv

    safety = wrapper_kwargs.pop("safety", None)
    safety = None if safety is None else parse_safety_config(safety)
    count_only = (safety is not None and safety.mode == "monitor" and safety.penalty_weight == 0
                  and not wrapper_kwargs.get("wrappers"))  # extra wrappers may change the actions on the way
    per_copy = None if count_only else safety

    def factory(i: int) -> Callable[[], gym.Env]:
        return lambda: Monitor(make_env(env_id, env_kwargs, safety=per_copy, **wrapper_kwargs))

    venv = StepVecEnv([factory(i) for i in range(n_envs)])  # bad input is refused by the first copy
    venv.seed(seed)
    venv.action_space.seed(seed)
    if not count_only:
        return venv
    try:
        return _count_safety(venv, safety)
    except InvalidInput:  # the safety config does not fit the task
        venv.close()
        raise


def _count_safety(venv: Any, config: SafetyConfig) -> Any:
    """``venv`` under a :class:`~flywheel.safety.counting.VecSafetyCounter` on its copies' continuous actions.

    Left as it is when those actions are not a flat ``Box`` (counting never refuses a task; see ``wrap_safety``).
    """
    from flywheel.safety.counting import VecSafetyCounter
    from flywheel.safety.limits import SafetyLayer

    env = venv.envs[0]
    discretize = _find_wrapper(env, DiscretizeAction)
    continuous = env if discretize is None else discretize.env
    box = continuous.action_space
    if not (isinstance(box, spaces.Box) and len(box.shape) == 1):
        return venv
    return VecSafetyCounter(venv, SafetyLayer.from_env(continuous, config),
                            table=None if discretize is None else discretize.table)


# ---------------------------------------------------------------------------------------------- experts


@runtime_checkable
class Expert(Protocol):
    """A scripted policy: ``expert(obs) -> action`` for the env's current state; ``reset()`` per episode."""

    def __call__(self, obs: Any) -> Any: ...

    def reset(self) -> None: ...


class _ScriptedExpert:
    """The Flywheel tasks' experts behind :class:`Expert`, in the wrapped env's action space."""

    def __init__(self, env: gym.Env, inner: Callable[[Any], np.ndarray], on_reset: Callable[[], None] | None,
                 step_count: Callable[[], int] | None) -> None:
        self._inner = inner
        self._on_reset = on_reset
        self._step_count = step_count
        self._last_step = -1
        self._table = _discrete_table(env)

    def reset(self) -> None:
        """Forget per-episode state (called automatically when the env's step counter restarts)."""
        if self._on_reset is not None:
            self._on_reset()
        self._last_step = -1

    def __call__(self, obs: Any = None) -> Any:
        """The expert action for the env's current state (call once per env step)."""
        if self._step_count is not None:
            step = self._step_count()
            if step <= self._last_step:
                self.reset()
            self._last_step = step
        action = self._inner(obs)
        if self._table is None:
            return action
        return int(np.argmin(np.abs(self._table - action).sum(axis=1)))  # the nearest discrete action


def _discrete_table(env: gym.Env) -> np.ndarray | None:
    """The decode table of the outermost ``DiscretizeAction`` (``None`` if the env is not discretised)."""
    discretize = _find_wrapper(env, DiscretizeAction)
    return None if discretize is None else discretize.table


def _find_wrapper(env: gym.Env, kind: type[gym.Wrapper]) -> Any:
    """The outermost wrapper of type ``kind`` in ``env``'s chain, or ``None``."""
    layer: Any = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, kind):
            return layer
        layer = layer.env
    return None


def expert_for(env: gym.Env) -> Expert:
    """The scripted expert of a Flywheel task, as ``expert(obs) -> action`` in ``env``'s action space.

    Track tasks get :class:`~flywheel.envs.track.expert.PurePursuitExpert`, Reachy tasks
    :class:`~flywheel.envs.reachy.expert.ReachyExpert` (its integral term resets by itself when a new
    episode starts). After :class:`DiscretizeAction` the expert answers the nearest discrete action.
    Both read the simulator, so call the expert exactly once per step, *before* ``env.step``, with the env in
    the state to label (DAgger: the learner drives, the expert labels).

    Raises:
        InvalidInput: the task has no scripted expert (``field="env"``).

    Example:
        >>> env = make_env("flywheel/ReachyLookAt-v0", seed=0)
        >>> expert = expert_for(env)
        >>> obs, _ = env.reset(seed=0)
        >>> expert(obs).shape
        (4,)
    """
    from flywheel.envs.reachy.base import ReachyEnv
    from flywheel.envs.track.env import TrackEnv

    task = env.unwrapped
    if isinstance(task, TrackEnv):
        from flywheel.envs.track.expert import PurePursuitExpert

        track_expert = PurePursuitExpert(env)
        return _ScriptedExpert(env, track_expert, None, None)
    if isinstance(task, ReachyEnv):
        from flywheel.envs.reachy.expert import ReachyExpert

        reachy_expert = ReachyExpert(env)
        return _ScriptedExpert(env, reachy_expert, reachy_expert.reset, lambda: task.step_count)
    raise InvalidInput(f"{type(task).__name__} has no scripted expert", field="env",
                       allowed=[i for i in registered_ids() if "donkey" not in i])


# ---------------------------------------------------------------------------------------------- features


def features_for(env: gym.Env) -> dict[str, dict[str, Any]]:
    """The dataset features (``observation.state``, ``action``) that record ``env``'s spaces.

    A ``Box`` observation of shape ``(n,)`` is ``float32 [n]``; a ``Box`` action ``float32 [m]``; a
    ``Discrete`` action ``int64 [1]`` (the index).

    Raises:
        InvalidInput: spaces a flat state dataset cannot hold (images, dicts, multi-dimensional boxes).

    Example:
        >>> features_for(make_env("flywheel/Track-v0", discretize=(5, 3)))["action"]
        {'dtype': 'int64', 'shape': [1], 'names': None}
    """
    obs, act = env.observation_space, env.action_space
    if not (isinstance(obs, spaces.Box) and len(obs.shape) == 1):
        raise InvalidInput(f"cannot record observations of {obs}", field="env.observation_space",
                           allowed="Box of shape (n,)")
    if isinstance(act, spaces.Discrete):
        action = {"dtype": "int64", "shape": [1], "names": None}
    elif isinstance(act, spaces.Box) and len(act.shape) == 1:
        action = {"dtype": "float32", "shape": [int(act.shape[0])], "names": None}
    else:
        raise InvalidInput(f"cannot record actions of {act}", field="env.action_space",
                           allowed="Box of shape (m,) or Discrete(n)")
    return {
        "observation.state": {"dtype": "float32", "shape": [int(obs.shape[0])], "names": None},
        "action": action,
    }
