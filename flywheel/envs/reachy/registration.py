"""Gymnasium registration of the Reachy Mini tasks under the ``flywheel/`` namespace.

====================================  =====================================================
id                                    task
====================================  =====================================================
``flywheel/ReachyLookAt-v0``          :class:`~flywheel.envs.reachy.tasks.ReachyLookAtEnv`
``flywheel/ReachyTrack-v0``           :class:`~flywheel.envs.reachy.tasks.ReachyTrackEnv`
``flywheel/ReachyNod-v0``             :class:`~flywheel.envs.reachy.gestures.ReachyNodEnv`
``flywheel/ReachyShake-v0``           :class:`~flywheel.envs.reachy.gestures.ReachyShakeEnv`
====================================  =====================================================

The environments truncate their own episodes (``episode_steps``), so no ``max_episode_steps`` is registered;
keyword arguments to ``gym.make`` go to the task (``action_mode``, ``render_mode``, ``camera``, ...).

Example:
    >>> import gymnasium as gym
    >>> _ = register()
    >>> env = gym.make("flywheel/ReachyLookAt-v0", action_mode="motors")
    >>> env.action_space.shape
    (7,)
"""

from __future__ import annotations

import gymnasium as gym

#: Environment id -> entry point.
REACHY_ENVS: dict[str, str] = {
    "flywheel/ReachyLookAt-v0": "flywheel.envs.reachy.tasks:ReachyLookAtEnv",
    "flywheel/ReachyTrack-v0": "flywheel.envs.reachy.tasks:ReachyTrackEnv",
    "flywheel/ReachyNod-v0": "flywheel.envs.reachy.gestures:ReachyNodEnv",
    "flywheel/ReachyShake-v0": "flywheel.envs.reachy.gestures:ReachyShakeEnv",
}


def register() -> list[str]:
    """Register every Reachy task with Gymnasium (idempotent); return their ids.

    Example:
        >>> register()[0]
        'flywheel/ReachyLookAt-v0'
    """
    for env_id, entry_point in REACHY_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)
    return list(REACHY_ENVS)
