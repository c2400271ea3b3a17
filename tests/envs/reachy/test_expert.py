"""The scripted experts: the 100 % reference must succeed, and beat random play by a wide margin."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.envs.reachy.expert import ReachyExpert, rollout
from flywheel.envs.reachy.gestures import ReachyNodEnv, ReachyShakeEnv
from flywheel.envs.reachy.tasks import ReachyLookAtEnv, ReachyTrackEnv


class RandomPolicy:
    def __init__(self, env, seed: int) -> None:
        self.space, self.rng = env.action_space, np.random.default_rng(seed)

    def reset(self) -> None:
        return None

    def __call__(self, obs):
        return self.rng.uniform(-1, 1, self.space.shape).astype(np.float32)


@pytest.mark.parametrize("mode", ["head_pose", "motors"])
def test_lookat_expert_succeeds_on_every_seed(mode):
    env = ReachyLookAtEnv(action_mode=mode)
    for seed in range(5):
        summary = rollout(env, ReachyExpert(env), seed=seed)
        assert summary["success"] == 1.0, f"seed {seed}: {summary}"


def test_lookat_expert_succeeds_at_the_corners_of_the_default_target_range():
    for azimuth in (-35.0, 35.0):
        for distance in (0.38, 0.6):
            env = ReachyLookAtEnv(
                distance_range=(distance, distance), azimuth_range_deg=(azimuth, azimuth), height_range=(0.02, 0.02)
            )
            assert rollout(env, seed=0)["success"] == 1.0, (azimuth, distance)


@pytest.mark.parametrize(
    "cls, mode",
    [
        (ReachyLookAtEnv, "head_pose"),
        (ReachyTrackEnv, "head_pose"),
        (ReachyNodEnv, "head_pose"),
        (ReachyShakeEnv, "head_pose"),
        (ReachyTrackEnv, "motors"),
        (ReachyNodEnv, "motors"),
        (ReachyShakeEnv, "motors"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_expert_succeeds_and_beats_random_by_a_wide_margin(cls, mode):
    env = cls(action_mode=mode)
    expert = [rollout(env, ReachyExpert(env), seed=seed) for seed in range(3)]
    random = [rollout(env, RandomPolicy(env, seed), seed=seed) for seed in range(3)]
    expert_return = np.mean([s["return"] for s in expert])
    random_return = np.mean([s["return"] for s in random])
    assert all(s["success"] == 1.0 for s in expert), expert
    assert not any(s["success"] for s in random), random
    assert expert_return > 2.5 * random_return
    assert expert_return > 0.6 * env.episode_steps  # near the per-step maximum, most of the episode
    assert np.mean([s["mean_error_deg"] for s in expert]) < 5.0
    assert np.mean([s["energy"] for s in expert]) < 0.2 * np.mean([s["energy"] for s in random])
    assert np.mean([s["mean_jerk"] for s in expert]) < 0.05 * np.mean([s["mean_jerk"] for s in random])


def test_holding_still_does_not_count_as_a_gesture():
    env = ReachyNodEnv()

    class Still(RandomPolicy):
        def __call__(self, obs):
            return np.zeros(4, dtype=np.float32)

    assert rollout(env, Still(env, 0), seed=0)["success"] == 0.0


def test_nodding_when_asked_to_shake_fails():
    env = ReachyShakeEnv()
    expert = ReachyExpert(env)
    shake_reference = env.reference_pose
    env.reference_pose = lambda step: shake_reference(step)[[0, 2, 1, 3]]  # the same motion, on pitch instead of yaw
    summary = rollout(env, expert, seed=0)
    assert summary["success"] == 0.0


def test_expert_action_is_inside_the_action_space():
    for mode in ("head_pose", "motors"):
        env = ReachyTrackEnv(action_mode=mode)
        expert = ReachyExpert(env)
        obs, _ = env.reset(seed=0)
        for _ in range(30):
            action = expert(obs)
            assert env.action_space.contains(action)
            obs, *_ = env.step(action)


def test_expert_refuses_other_envs():
    import gymnasium as gym

    with pytest.raises(TypeError):
        ReachyExpert(gym.make("CartPole-v1"))
