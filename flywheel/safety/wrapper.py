"""The safety layer around a Gymnasium env, for training and evaluation.

:class:`SafetyWrapper` sends every action through a :class:`~flywheel.safety.limits.SafetyLayer`:

- ``mode="enforce"`` (default): the env receives the clipped action; ``mode="monitor"``: the env receives the
  action unchanged and violations are only counted (what a run without ``safety: true`` reports).
- each violated limit costs ``r_safety = -penalty_weight`` (added to the reward; ``penalty_weight=0`` reports
  without shaping, as evaluation does);
- ``info`` gets, every step, ``safety_violation`` (bool: the evaluation counts these as ``safety_incidents``)
  and ``r_safety``; when a limit is broken also ``safety_violations`` (one sentence per limit); at the end of
  an episode ``safety_episode`` (``actions``, ``violating_actions`` and every violation with its step).
- :attr:`SafetyWrapper.violation_rate` (violating actions / actions since the wrapper was built) is the
  figure the templates log as ``safety/violation_rate``; the plan's bar is < 1 %.

:func:`make_env(..., safety=…) <flywheel.training.envs.make_env>` puts the wrapper under ``DiscretizeAction``, so
it always sees continuous actions. A vec env that only counts (``monitor`` mode, no penalty) needs no wrapper in
every copy: :mod:`flywheel.safety.counting` counts a whole batch of steps at once, to the same figures.

Example:
    >>> import gymnasium as gym, flywheel.envs
    >>> env = SafetyWrapper(gym.make("flywheel/Track-v0"), {"limits": {"throttle": [0, 0.5]}})
    >>> _ = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step([0.0, 0.9])
    >>> info["safety_violation"], info["r_safety"], info["safety_violations"]
    (True, -1.0, ['throttle = 0.9 is outside [0, 0.5]'])
    >>> env.violation_rate
    1.0
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces

from flywheel.safety.config import SafetyConfig, parse_safety_config
from flywheel.safety.limits import SafetyLayer, SafetyStats


class SafetyWrapper(gym.Wrapper):
    """Checks (and in ``enforce`` mode clips) every action; penalises and records violations.

    Args:
        env: an env with a flat ``Box`` action space.
        config: a :class:`~flywheel.safety.config.SafetyConfig` or its dict (default: the robot's own limits).

    Raises:
        InvalidInput: the config does not fit the env (see :class:`~flywheel.safety.limits.SafetyLayer`).
    """

    def __init__(self, env: gym.Env, config: SafetyConfig | dict[str, Any] | None = None) -> None:
        super().__init__(env)
        self.layer = SafetyLayer.from_env(env, config)
        self.penalty_weight = float(self.layer.config.penalty_weight)

    @property
    def safety_stats(self) -> SafetyStats:
        """The layer's counters (actions, violating actions, violations per limit)."""
        return self.layer.stats

    @property
    def violation_rate(self) -> float:
        """Violating actions / actions since the wrapper was built."""
        return self.layer.stats.violation_rate

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the layer's episode (the rate check starts from the rest pose)."""
        self.layer.reset()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Check the action, send the safe one, add ``r_safety`` and the safety keys to ``info``."""
        checked = self.layer.apply(action)
        obs, reward, terminated, truncated, info = self.env.step(checked.action)
        violations = checked.violations
        r_safety = -self.penalty_weight * len(violations) if violations else 0.0
        info["safety_violation"] = bool(violations)
        info["r_safety"] = r_safety
        if violations:
            info["safety_violations"] = [str(v) for v in violations]
        if terminated or truncated:
            episode = self.layer.episode
            info["safety_episode"] = {
                "actions": self.layer.step_index,
                "violating_actions": len({v["step"] for v in episode}),
                "violations": list(episode),
            }
        return obs, float(reward) + r_safety, terminated, truncated, info


def wrap_safety(env: gym.Env, config: SafetyConfig | dict[str, Any] | None) -> gym.Env:
    """``env`` in a :class:`SafetyWrapper`; in ``monitor`` mode an env without ``Box`` actions is left as it is.

    Counting is a courtesy every run gets, so it never refuses a task; enforcing is asked for, so it does.

    Raises:
        InvalidInput: ``enforce`` mode on an env without a flat ``Box`` action space, or a config that does
            not fit the env.

    Example:
        >>> import gymnasium as gym
        >>> wrap_safety(gym.make("CartPole-v1"), {"mode": "monitor"}).spec.id
        'CartPole-v1'
    """
    config = parse_safety_config(config)
    box = env.action_space
    if config.mode == "monitor" and not (isinstance(box, spaces.Box) and len(box.shape) == 1):
        return env
    return SafetyWrapper(env, config)


def find_safety_wrapper(env: gym.Env) -> SafetyWrapper | None:
    """The outermost :class:`SafetyWrapper` in ``env``'s wrapper chain, or ``None``.

    Example:
        >>> import gymnasium as gym, flywheel.envs
        >>> find_safety_wrapper(gym.make("flywheel/Track-v0")) is None
        True
    """
    layer: Any = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, SafetyWrapper):
            return layer
        layer = layer.env
    return None

