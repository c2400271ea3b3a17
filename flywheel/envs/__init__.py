"""Gymnasium tasks, registered under the ``flywheel/`` namespace when this package is imported.

Registration is one flat list of ``EnvSpec``-style entries with entry-point *strings*, so importing
``flywheel.envs`` loads no simulator code; add new tasks by appending to ``ENV_SPECS``.

| id | what |
|---|---|
| ``flywheel/Track-v0`` | ``TrackEnv`` (``track=``: generated-roads, mountain, warehouse) |
| ``flywheel/donkey-<scene>-v0`` | ``DonkeySimEnv``, a client of the DonkeyCar Unity simulator |
| ``flywheel/Reachy{LookAt,Track,Nod,Shake}-v0`` | Reachy Mini head tasks (``flywheel.envs.reachy``) |

Example:
    >>> import gymnasium as gym
    >>> import flywheel.envs
    >>> env = gym.make("flywheel/Track-v0", track="mountain")
    >>> env.unwrapped.track.name
    'mountain'
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

from flywheel.envs.reachy.registration import register as register_reachy

NAMESPACE = "flywheel"

#: Every task Flywheel registers: ``id``, ``entry_point`` (string) and optional ``kwargs``/``max_episode_steps``.
ENV_SPECS: list[dict[str, Any]] = [
    {"id": "flywheel/Track-v0", "entry_point": "flywheel.envs.track.env:TrackEnv"},
]

#: DonkeyCar simulator scenes: gym-donkeycar's env name -> the scene name the simulator loads.
DONKEY_SCENES: dict[str, str] = {
    "generated-roads": "generated_road",
    "warehouse": "warehouse",
    "avc-sparkfun": "sparkfun_avc",
    "generated-track": "generated_track",
    "mountain-track": "mountain_track",
    "roboracingleague-track": "roboracingleague_1",
    "waveshare": "waveshare",
    "minimonaco-track": "mini_monaco",
    "warren-track": "warren",
    "thunderhill-track": "thunderhill",
    "circuit-launch-track": "circuit_launch",
}
ENV_SPECS += [
    {"id": f"flywheel/donkey-{name}-v0", "entry_point": "flywheel.envs.donkey.env:DonkeySimEnv",
     "kwargs": {"scene": scene}}
    for name, scene in DONKEY_SCENES.items()
]


def register_all() -> list[str]:
    """Register every entry of ``ENV_SPECS`` not yet registered; returns the ids registered now. Idempotent."""
    added = []
    for spec in ENV_SPECS:
        if spec["id"] not in registry:
            register(**spec)
            added.append(spec["id"])
    return added


register_all()
register_reachy()
