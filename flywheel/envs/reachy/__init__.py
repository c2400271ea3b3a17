"""Reachy Mini head tasks on the robot's own MuJoCo model (look at, track, nod, shake).

Modules: :mod:`.model` (the MJCF and its names), :mod:`.kinematics` (head pose -> Stewart motors),
:mod:`.base` (the shared environment), :mod:`.tasks` and :mod:`.gestures` (the four tasks), :mod:`.expert`
(scripted experts) and :mod:`.registration` (Gymnasium ids ``flywheel/Reachy*-v0``).

Example:
    >>> import gymnasium as gym
    >>> from flywheel.envs.reachy import register
    >>> _ = register()
    >>> gym.make("flywheel/ReachyNod-v0").action_space.shape
    (4,)
"""

from flywheel.envs.reachy.registration import REACHY_ENVS, register

__all__ = ["REACHY_ENVS", "register"]
