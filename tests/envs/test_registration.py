"""The flywheel/ env ids."""

from __future__ import annotations

import gymnasium as gym
import pytest

import flywheel.envs
from flywheel.envs import ENV_SPECS, register_all
from flywheel.envs.track import TrackEnv
from flywheel.errors import InvalidInput


def test_every_spec_is_registered_once_under_the_namespace() -> None:
    ids = [spec["id"] for spec in ENV_SPECS]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("flywheel/") and i in gym.registry for i in ids)
    assert {"flywheel/Track-v0", "flywheel/donkey-generated-roads-v0", "flywheel/donkey-mountain-track-v0",
            "flywheel/donkey-warehouse-v0"} <= set(ids)
    assert register_all() == []  # idempotent
    assert all(isinstance(spec["entry_point"], str) for spec in ENV_SPECS)  # nothing imported at registration


def test_track_v0_makes_a_track_env_with_kwargs() -> None:
    env = gym.make("flywheel/Track-v0", track="warehouse", random_start=True)
    assert isinstance(env.unwrapped, TrackEnv) and env.unwrapped.track.name == "warehouse"
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    with pytest.raises(InvalidInput, match="track"):
        gym.make("flywheel/Track-v0", track="monaco")
    assert flywheel.envs.NAMESPACE == "flywheel"
