"""DiscretizeAction, SpeedReward, DomainRandomization, Curriculum."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from flywheel.envs.track import TrackEnv
from flywheel.envs.wrappers import (
    Curriculum,
    DiscretizeAction,
    DomainRandomization,
    HasDifficulty,
    PhysicsRandomizable,
    SpeedReward,
)
from flywheel.errors import InvalidInput


class RecordingEnv(gym.Env):
    """Records every action it is given; observations are a float vector or a uint8 image."""

    def __init__(self, image: bool = False, episode_length: int = 1000) -> None:
        self.action_space = spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 1.0], np.float32))
        shape, dtype = ((4, 6, 3), np.uint8) if image else ((3,), np.float32)
        self.observation_space = spaces.Box(0, 255 if image else 1, shape, dtype)
        self.image = image
        self.episode_length = episode_length
        self.applied: list[Any] = []
        self.physics: list[dict[str, float]] = []
        self.difficulty: list[int] = []
        self.difficulty_levels = 3
        self.succeed = True

    def _obs(self) -> np.ndarray:
        return np.full(self.observation_space.shape, 100 if self.image else 0.5, self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.applied.append(np.asarray(action).tolist())
        self.t += 1
        done = self.t >= self.episode_length
        info = {"speed": 2.0, "cte": 0.5, "is_success": self.succeed} if done else {"speed": 2.0, "cte": 0.5}
        return self._obs(), 1.0, False, done, info

    def set_physics(self, *, friction: float = 1.0, mass: float = 1.0) -> None:
        self.physics.append({"friction": friction, "mass": mass})

    def set_difficulty(self, level: int) -> None:
        self.difficulty.append(level)


# ------------------------------------------------------------------------------------ DiscretizeAction


def test_discretize_action_decode_table_is_exact() -> None:
    env = DiscretizeAction(TrackEnv(), n_steer=5, n_throttle=3)
    assert env.action_space == spaces.Discrete(15)
    assert env.action(7).tolist() == [0.0, 0.5]
    expected = [[s, t] for s in (-1.0, -0.5, 0.0, 0.5, 1.0) for t in (0.0, 0.5, 1.0)]
    assert env.table.tolist() == expected
    assert [env.action(i).tolist() for i in range(15)] == expected


def test_discretize_action_passes_the_decoded_action_to_the_env() -> None:
    base = RecordingEnv()
    env = DiscretizeAction(base, n_steer=3, n_throttle=2)
    env.reset(seed=0)
    for i in (0, 3, 5):
        env.step(i)
    assert base.applied == [[-1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]


@pytest.mark.parametrize(("kwargs", "field"), [({"n_steer": 1}, "n_steer"), ({"n_throttle": 1}, "n_throttle"),
                                              ({"n_steer": 2.5}, "n_steer"), ({"n_steer": True}, "n_steer")])
def test_discretize_action_refuses_bad_counts(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        DiscretizeAction(TrackEnv(), **kwargs)
    assert err.value.field == field and "≥ 2" in str(err.value)


def test_discretize_action_refuses_other_spaces_and_out_of_range_indices() -> None:
    with pytest.raises(InvalidInput, match=r"env\.action_space"):
        DiscretizeAction(gym.make("CartPole-v1"))
    env = DiscretizeAction(TrackEnv())
    with pytest.raises(InvalidInput, match=r"0\.\.14"):
        env.action(15)


# ------------------------------------------------------------------------------------------ SpeedReward


def test_speed_reward_is_speed_times_centring() -> None:
    env = SpeedReward(TrackEnv(track="mountain"))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        _, reward, terminated, _, info = env.step(rng.uniform([-0.3, 0.5], [0.3, 1.0]))
        assert reward == pytest.approx(info["speed"] * (1 - abs(info["cte"]) / 1.75))
        assert "task_reward" in info
        if terminated:
            break
    assert info["speed"] > 1.0


def test_speed_reward_formula_with_given_max_cte_and_bad_values() -> None:
    env = SpeedReward(RecordingEnv(), max_cte=2.0)
    env.reset(seed=0)
    assert env.step([0.0, 1.0])[1] == pytest.approx(2.0 * (1 - 0.5 / 2.0))
    with pytest.raises(InvalidInput, match="max_cte"):
        SpeedReward(TrackEnv(), max_cte=0.0)
    with pytest.raises(InvalidInput, match="max_cte"):
        SpeedReward(gym.make("CartPole-v1"))


# ---------------------------------------------------------------------------------- DomainRandomization


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_latency_delays_actions_exactly_n_steps(delay: int) -> None:
    base = RecordingEnv()
    env = DomainRandomization(base, latency=delay, seed=0)
    _, info = env.reset(seed=0)
    assert info["domain"]["latency"] == delay
    given = [[round(0.1 * i, 1), 0.5] for i in range(8)]
    for a in given:
        env.step(a)
    assert base.applied == [[0.0, 0.0]] * delay + given[: len(given) - delay]


def test_latency_range_is_redrawn_each_episode_within_bounds() -> None:
    env = DomainRandomization(RecordingEnv(), latency=(1, 3), seed=0)
    seen = {env.reset()[1]["domain"]["latency"] for _ in range(40)}
    assert seen == {1, 2, 3}


def test_friction_and_mass_are_drawn_per_episode_and_reach_the_car() -> None:
    env = DomainRandomization(TrackEnv(), friction=(0.5, 0.9), mass=(1.1, 1.5), seed=0)
    frictions = []
    for _ in range(20):
        _, info = env.reset()
        d = info["domain"]
        assert 0.5 <= d["friction"] <= 0.9 and 1.1 <= d["mass"] <= 1.5
        assert env.unwrapped.car.params.friction == pytest.approx(d["friction"])
        assert env.unwrapped.car.params.mass == pytest.approx(3.0 * d["mass"])
        frictions.append(d["friction"])
    assert np.std(frictions) > 0.05


def test_randomisation_is_seeded() -> None:
    def draws(seed: int) -> list[float]:
        env = DomainRandomization(RecordingEnv(), friction=(0.5, 1.5), obs_noise=0.1)
        _, info = env.reset(seed=seed)
        return [info["domain"]["friction"], *env.step([0.0, 0.0])[0].tolist()]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_observation_noise_has_the_requested_spread() -> None:
    env = DomainRandomization(RecordingEnv(), obs_noise=0.2, seed=0)
    env.reset(seed=0)
    noise = np.concatenate([env.step([0.0, 0.0])[0] - 0.5 for _ in range(2000)])
    assert noise.std() == pytest.approx(0.2, rel=0.05) and abs(noise.mean()) < 0.01
    quiet = DomainRandomization(RecordingEnv(), seed=0)
    assert quiet.reset(seed=0)[0].tolist() == [0.5, 0.5, 0.5]


def test_lighting_scales_image_observations_and_frames() -> None:
    env = DomainRandomization(RecordingEnv(image=True), lighting=(1.5, 1.5), seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and (obs == 150).all()
    bright = DomainRandomization(RecordingEnv(image=True), lighting=(3.0, 3.0), seed=0)
    assert (bright.reset(seed=0)[0] == 255).all()  # clipped, not wrapped around
    track = DomainRandomization(TrackEnv(render_mode="rgb_array"), lighting=(0.5, 0.5), seed=0)
    track.reset(seed=0)
    assert np.abs(track.render().astype(int) - track.unwrapped.render() // 2).max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"friction": (1.2, 0.8)}, "friction"), ({"mass": (0.0, 1.0)}, "mass"), ({"friction": 0.5}, "friction"),
     ({"latency": -1}, "latency"), ({"latency": (3, 1)}, "latency"), ({"obs_noise": -0.1}, "obs_noise"),
     ({"lighting": (-1.0, 1.0)}, "lighting")],
)
def test_domain_randomization_refuses_invalid_ranges(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        DomainRandomization(TrackEnv(), **kwargs)
    assert err.value.field == field


def test_physics_randomisation_needs_the_hook() -> None:
    with pytest.raises(InvalidInput, match="set_physics"):
        DomainRandomization(gym.make("CartPole-v1"), friction=(0.8, 1.2))
    assert isinstance(TrackEnv(), PhysicsRandomizable) and isinstance(TrackEnv(), HasDifficulty)


# ------------------------------------------------------------------------------------------- Curriculum


def test_curriculum_raises_the_level_when_the_success_rate_passes_the_threshold() -> None:
    base = RecordingEnv(episode_length=1)
    env = Curriculum(base, threshold=0.75, window=4)

    def episode(success: bool) -> int:
        base.succeed = success
        env.reset()
        return env.step([0.0, 0.0])[4]["curriculum_level"]

    assert [episode(s) for s in (True, False, True, True)] == [0, 0, 0, 1]  # 3/4 = 0.75 ≥ 0.75: promoted
    assert base.difficulty[-1] == 0  # the new level applies from the next reset
    env.reset()
    assert base.difficulty[-1] == 1 and env.results == type(env.results)([], maxlen=4)
    assert [episode(s) for s in (True, False, False, True, True, True)] == [1, 1, 1, 1, 1, 2]  # rolling window
    assert [episode(True) for _ in range(8)] == [2] * 8  # already at the hardest level


def test_curriculum_drives_track_env_top_speed() -> None:
    env = Curriculum(TrackEnv(max_steps=5), threshold=1.0, window=2)
    assert env.unwrapped.car.max_speed == 4.0
    env.unwrapped.lap_count = 0
    for _ in range(2):
        env.reset(seed=0)
        env.unwrapped.lap_count = 1  # pretend the lap was driven: is_success comes from lap_count
        for _ in range(5):
            *_, info = env.step([0.0, 1.0])
    assert info["is_success"] and env.level == 1
    env.reset()
    assert env.unwrapped.car.max_speed == 6.0


def test_curriculum_refuses_bad_settings_and_envs_without_levels() -> None:
    with pytest.raises(InvalidInput, match="threshold"):
        Curriculum(TrackEnv(), threshold=0.0)
    with pytest.raises(InvalidInput, match="window"):
        Curriculum(TrackEnv(), window=0)
    with pytest.raises(InvalidInput, match="start_level"):
        Curriculum(TrackEnv(), start_level=4)
    with pytest.raises(InvalidInput, match="HasDifficulty"):
        Curriculum(gym.make("CartPole-v1"))
