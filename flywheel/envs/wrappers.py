"""Wrappers shared by Flywheel's tasks: discrete actions, a speed reward, domain randomisation, a curriculum.

Two hooks let a wrapper reach into any task without knowing it (``TrackEnv`` implements both; a new
task implements them on its unwrapped env to get randomisation and curricula for free):

- :class:`PhysicsRandomizable`: ``set_physics(*, friction: float, mass: float)`` multiplies the task's
  friction coefficients and masses by the given factors (1.0 = nominal) until called again.
- :class:`HasDifficulty`: ``difficulty_levels: int`` and ``set_difficulty(level: int)`` (0 = easiest); what a
  level changes is documented by each task (``TrackEnv``: top speed 4/6/8/10 m/s, random starts last).

Example:
    >>> import gymnasium as gym
    >>> import flywheel.envs
    >>> env = DiscretizeAction(gym.make("flywheel/Track-v0"), n_steer=5, n_throttle=3)
    >>> env.action_space
    Discrete(15)
    >>> env.action(7).tolist()
    [0.0, 0.5]
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol, SupportsFloat, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flywheel.errors import InvalidInput


@runtime_checkable
class PhysicsRandomizable(Protocol):
    """A task whose physics :class:`DomainRandomization` can scale."""

    def set_physics(self, *, friction: float = 1.0, mass: float = 1.0) -> None:
        """Scale friction and mass by these factors relative to nominal (1.0 restores nominal)."""


@runtime_checkable
class HasDifficulty(Protocol):
    """A task with numbered difficulty levels for :class:`Curriculum`."""

    difficulty_levels: int

    def set_difficulty(self, level: int) -> None:
        """Switch to ``level`` (0 = easiest, ``difficulty_levels - 1`` = hardest) from the next episode."""


def _check_int(value: Any, field: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InvalidInput(f"must be an integer ≥ {low}, got {value!r}", field=field, allowed=f"≥ {low}")
    return int(value)


def _check_range(value: Any, field: str, *, low: float = 0.0, strict: bool = True) -> tuple[float, float] | None:
    """Validate an optional ``(min, max)`` pair with ``low < min <= max`` (or ``low <= min`` when not strict)."""
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInput(f"must be a (min, max) pair, got {value!r}", field=field, allowed="(min, max)") from None
    ok_low = lo > low if strict else lo >= low
    if not (ok_low and lo <= hi and np.isfinite(hi)):
        bound = f"{'>' if strict else '≥'} {low}"
        raise InvalidInput(f"got {value!r}", field=field, allowed=f"(min, max) with {bound} min ≤ max, finite")
    return lo, hi


class DiscretizeAction(gym.ActionWrapper):
    """Turn a 2-D ``(steer, throttle)`` Box into ``Discrete(n_steer · n_throttle)``, e.g. for DQN.

    Steer values are ``linspace(low[0], high[0], n_steer)``, throttle values
    ``linspace(low[1], high[1], n_throttle)``, and index ``i = steer_i · n_throttle + throttle_i``.
    On ``TrackEnv`` (steer −1..1, throttle 0..1) with 5 × 3: index 7 = (steer 0.0, throttle 0.5).

    Args:
        env: an env whose action space is a finite ``Box`` of shape (2,).
        n_steer: number of steering values, ≥ 2 (odd keeps "straight ahead").
        n_throttle: number of throttle values, ≥ 2.

    Example:
        >>> import flywheel.envs
        >>> env = DiscretizeAction(gym.make("flywheel/Track-v0"), n_steer=3, n_throttle=2)
        >>> env.table.tolist()
        [[-1.0, 0.0], [-1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    """

    def __init__(self, env: gym.Env, n_steer: int = 5, n_throttle: int = 3) -> None:
        super().__init__(env)
        box = env.action_space
        if not (isinstance(box, spaces.Box) and box.shape == (2,) and box.is_bounded("both")):
            raise InvalidInput(f"needs a bounded Box of shape (2,), got {box}", field="env.action_space",
                               allowed="Box(low, high, (2,))")
        self.n_steer = _check_int(n_steer, "n_steer", 2)
        self.n_throttle = _check_int(n_throttle, "n_throttle", 2)
        steer = np.linspace(box.low[0], box.high[0], self.n_steer)
        throttle = np.linspace(box.low[1], box.high[1], self.n_throttle)
        #: Row ``i`` is the continuous action that discrete action ``i`` stands for.
        self.table = np.array([[s, t] for s in steer for t in throttle], dtype=box.dtype)
        self.action_space = spaces.Discrete(len(self.table))

    def action(self, action: Any) -> np.ndarray:
        """The continuous ``(steer, throttle)`` for discrete ``action``."""
        i = int(action)
        if not 0 <= i < len(self.table):
            raise InvalidInput(f"got {action!r}", field="action", allowed=f"0..{len(self.table) - 1}")
        return self.table[i].copy()


class SpeedReward(gym.Wrapper):
    """Opt-in DonkeyCar-style reward: ``speed × (1 − |cte| / max_cte)`` (fast *and* centred).

    Reads ``speed`` and ``cte`` from ``info``; the task's own reward is kept in ``info["task_reward"]``.

    Args:
        env: a task whose ``info`` carries ``speed`` and ``cte``.
        max_cte: the normaliser; default the unwrapped env's ``max_cte``.

    Example:
        >>> import flywheel.envs
        >>> env = SpeedReward(gym.make("flywheel/Track-v0"))
        >>> _ = env.reset(seed=0)
        >>> _, reward, *_, info = env.step([0.0, 1.0])
        >>> reward == info["speed"] * (1 - abs(info["cte"]) / env.max_cte)
        True
    """

    def __init__(self, env: gym.Env, max_cte: float | None = None) -> None:
        super().__init__(env)
        if max_cte is None:
            max_cte = getattr(env.unwrapped, "max_cte", None)
        if max_cte is None or not max_cte > 0:
            raise InvalidInput(f"must be positive (or the env must define max_cte), got {max_cte!r}",
                               field="max_cte", allowed="> 0")
        self.max_cte = float(max_cte)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["task_reward"] = reward
        return obs, float(info["speed"]) * (1.0 - abs(float(info["cte"])) / self.max_cte), terminated, truncated, info


class DomainRandomization(gym.Wrapper):
    """Per-episode randomisation of physics, latency, observation noise and lighting.

    At every ``reset`` it draws (uniformly within each range) and applies:

    - ``friction``, ``mass``: factors passed to the task's ``set_physics`` hook (:class:`PhysicsRandomizable`);
    - ``latency``: an action delay in whole steps: the action given at step t is applied at step t + N
      (the first N steps apply ``neutral_action``);
    - ``obs_noise``: standard deviation of Gaussian noise added to float observations every step;
    - ``lighting``: a brightness gain for image observations (uint8 arrays of shape (H, W, C), also inside
      Dict observations), applied every step; and to ``render()`` frames.

    The draw is recorded in ``info["domain"]`` at reset and kept in :attr:`current`. Everything is drawn
    from a generator seeded by ``seed`` (or by ``reset(seed=…)``), so runs repeat exactly.

    Args:
        env: the task.
        friction: ``(min, max)`` friction factor, or ``None`` to leave friction alone.
        mass: ``(min, max)`` mass factor, or ``None``.
        latency: ``(min, max)`` delay in steps (integers ≥ 0), or one integer.
        obs_noise: noise standard deviation (≥ 0) on float observations.
        lighting: ``(min, max)`` brightness gain, or ``None``.
        neutral_action: the action applied while the delay line fills; default zeros clipped into the space.
        seed: seed of the randomisation generator.

    Example:
        >>> import flywheel.envs
        >>> env = DomainRandomization(gym.make("flywheel/Track-v0"), friction=(0.5, 1.0), latency=2, seed=0)
        >>> _, info = env.reset(seed=0)
        >>> sorted(info["domain"])
        ['friction', 'latency', 'lighting', 'mass', 'obs_noise']
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        friction: tuple[float, float] | None = None,
        mass: tuple[float, float] | None = None,
        latency: int | tuple[int, int] = 0,
        obs_noise: float = 0.0,
        lighting: tuple[float, float] | None = None,
        neutral_action: Any = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(env)
        self.friction = _check_range(friction, "friction")
        self.mass = _check_range(mass, "mass")
        self.lighting = _check_range(lighting, "lighting", strict=False)
        lat = (latency, latency) if isinstance(latency, int | np.integer) else latency
        try:
            lo, hi = (_check_int(v, "latency", 0) for v in lat)
        except TypeError:
            raise InvalidInput(f"got {latency!r}", field="latency", allowed="an integer ≥ 0 or (min, max)") from None
        if lo > hi:
            raise InvalidInput(f"min > max in {latency!r}", field="latency", allowed="(min, max) with min ≤ max")
        self.latency = (lo, hi)
        if not (isinstance(obs_noise, int | float) and np.isfinite(obs_noise) and obs_noise >= 0):
            raise InvalidInput(f"got {obs_noise!r}", field="obs_noise", allowed="≥ 0")
        self.obs_noise = float(obs_noise)
        if (self.friction or self.mass) and not callable(getattr(env.unwrapped, "set_physics", None)):
            raise InvalidInput(f"{type(env.unwrapped).__name__} has no set_physics(friction=, mass=) hook",
                               field="friction" if self.friction else "mass", allowed=None)
        if neutral_action is None:
            space = env.action_space
            neutral_action = np.clip(np.zeros(space.shape, space.dtype), space.low, space.high) \
                if isinstance(space, spaces.Box) else 0
        self.neutral_action = neutral_action
        self._rng = np.random.default_rng(seed)
        self._queue: deque[Any] = deque()
        self.current: dict[str, float] = {}

    def _draw(self, bounds: tuple[float, float] | None, default: float) -> float:
        return default if bounds is None else float(self._rng.uniform(*bounds))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng([seed, 0xD0])
        self.current = {
            "friction": self._draw(self.friction, 1.0),
            "mass": self._draw(self.mass, 1.0),
            "latency": int(self._rng.integers(self.latency[0], self.latency[1] + 1)),
            "obs_noise": self.obs_noise,
            "lighting": self._draw(self.lighting, 1.0),
        }
        if self.friction or self.mass:
            self.env.unwrapped.set_physics(friction=self.current["friction"], mass=self.current["mass"])
        self._queue = deque([self.neutral_action] * self.current["latency"])
        obs, info = self.env.reset(seed=seed, options=options)
        info["domain"] = dict(self.current)
        return self._transform(obs), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._queue:
            self._queue.append(action)
            action = self._queue.popleft()
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._transform(obs), reward, terminated, truncated, info

    def render(self) -> Any:
        frame = self.env.render()
        return self._light(frame) if isinstance(frame, np.ndarray) else frame

    def _light(self, image: np.ndarray) -> np.ndarray:
        gain = self.current.get("lighting", 1.0)
        if gain == 1.0:
            return image
        return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)

    def _transform(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return {k: self._transform(v) for k, v in obs.items()}
        if not isinstance(obs, np.ndarray):
            return obs
        if obs.dtype == np.uint8 and obs.ndim == 3:
            return self._light(obs)
        if self.obs_noise and np.issubdtype(obs.dtype, np.floating):
            return (obs + self._rng.normal(0.0, self.obs_noise, obs.shape)).astype(obs.dtype)
        return obs


class Curriculum(gym.Wrapper):
    """Raise the task's difficulty level as the rolling success rate rises.

    After each episode, records ``info["is_success"]`` (absent = failure). Once the last ``window``
    episodes at the current level succeed at a rate ≥ ``threshold``, the level goes up by one (up to the
    task's hardest), the record is cleared, and the new level applies from the next ``reset``. The level
    is reported in ``info["curriculum_level"]`` every step and kept in :attr:`level`.

    Args:
        env: a task implementing :class:`HasDifficulty`.
        threshold: success rate that promotes, in (0, 1].
        window: number of recent episodes the rate is computed over, ≥ 1.
        start_level: the first level.

    Example:
        >>> import flywheel.envs
        >>> env = Curriculum(gym.make("flywheel/Track-v0"), threshold=0.8, window=5)
        >>> env.level, env.unwrapped.car.max_speed
        (0, 4.0)
    """

    def __init__(self, env: gym.Env, *, threshold: float = 0.8, window: int = 20, start_level: int = 0) -> None:
        super().__init__(env)
        task = env.unwrapped
        if not isinstance(task, HasDifficulty):
            raise InvalidInput(f"{type(task).__name__} has no difficulty_levels/set_difficulty hook", field="env",
                               allowed="a task implementing HasDifficulty")
        if not (isinstance(threshold, int | float) and 0 < threshold <= 1):
            raise InvalidInput(f"got {threshold!r}", field="threshold", allowed="(0, 1]")
        self.window = _check_int(window, "window", 1)
        self.levels = int(task.difficulty_levels)
        start = _check_int(start_level, "start_level", 0)
        if start >= self.levels:
            raise InvalidInput(f"got {start_level!r}", field="start_level", allowed=f"0..{self.levels - 1}")
        self.threshold = float(threshold)
        self.level = start
        self.results: deque[bool] = deque(maxlen=self.window)
        task.set_difficulty(self.level)

    @property
    def success_rate(self) -> float:
        """Success rate over the recorded episodes at this level (0.0 when none)."""
        return sum(self.results) / len(self.results) if self.results else 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.env.unwrapped.set_difficulty(self.level)
        obs, info = self.env.reset(seed=seed, options=options)
        info["curriculum_level"] = self.level
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self.results.append(bool(info.get("is_success", False)))
            if (len(self.results) == self.window and self.success_rate >= self.threshold
                    and self.level < self.levels - 1):
                self.level += 1
                self.results.clear()
        info["curriculum_level"] = self.level
        return obs, reward, terminated, truncated, info
