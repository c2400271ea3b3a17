"""TrackEnv: spaces, determinism, reward, episode ends, hooks, bad input; and the expert's laps."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from flywheel.envs.track import DIFFICULTY, TRACK_NAMES, CarParams, PurePursuitExpert, TrackEnv
from flywheel.errors import InvalidInput


def _rollout(env: TrackEnv, seed: int, steps: int = 200) -> tuple[list[np.ndarray], list[float]]:
    rng = np.random.default_rng(123)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(rng.uniform([-1, 0], [1, 1]).astype(np.float32))
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            obs, _ = env.reset()
            observations.append(obs)
    return observations, rewards


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_gymnasium_check_env_passes(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box warnings: the observation is deliberately unbounded
        check_env(TrackEnv(track=name, random_start=True, n_rays=3))


def test_spaces_are_as_documented() -> None:
    env = TrackEnv()
    assert env.action_space.low.tolist() == [-1.0, 0.0] and env.action_space.high.tolist() == [1.0, 1.0]
    assert env.observation_space.shape == (13,)
    assert TrackEnv(lookahead=(3.0,), n_rays=4).observation_space.shape == (3 + 2 + 4,)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32
    assert obs[:3].tolist() == [0.0, 0.0, 0.0]  # standing still, aligned, centred
    assert obs[3] == pytest.approx(0.2, abs=0.01) and obs[4] == pytest.approx(0.0, abs=0.01)  # 2 m ahead / 10 m


def test_same_seed_same_episode_and_different_seed_different_start() -> None:
    a, ra = _rollout(TrackEnv(track="mountain", random_start=True), seed=7)
    b, rb = _rollout(TrackEnv(track="mountain", random_start=True), seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and ra == rb
    c, _ = _rollout(TrackEnv(track="mountain", random_start=True), seed=8, steps=1)
    assert not np.array_equal(a[0], c[0])


def test_reward_is_progress_along_the_centre_line_and_info_is_donkey_like() -> None:
    env = TrackEnv(track="warehouse")  # the first leg runs 40 m along +x
    env.reset(seed=0)
    total = 0.0
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        total += reward
    assert not (terminated or truncated)
    assert total == pytest.approx(info["pos"][0]) == pytest.approx(info["progress"])
    assert {"cte", "speed", "lap_time", "lap_count", "pos"} <= set(info)
    assert info["speed"] > 0 and info["time"] == pytest.approx(30 * 0.05)


def test_leaving_the_road_terminates_exactly_when_cte_exceeds_max_cte() -> None:
    env = TrackEnv(track="warehouse")
    env.reset(seed=0)
    ctes = []
    for _ in range(400):
        _, _, terminated, truncated, info = env.step([1.0, 1.0])  # full left, full throttle
        ctes.append(info["cte"])
        if terminated:
            break
    assert terminated and not truncated and info["is_success"] is False
    assert abs(ctes[-1]) > env.max_cte == 2.0
    assert all(abs(c) <= env.max_cte for c in ctes[:-1])


def test_truncation_at_max_steps() -> None:
    env = TrackEnv(max_steps=10)
    env.reset(seed=0)
    results = [env.step([0.0, 0.0]) for _ in range(10)]
    assert [r[3] for r in results] == [False] * 9 + [True]
    assert not any(r[2] for r in results)


def test_friction_and_mass_act_through_the_car_model() -> None:
    def yaw_after_turn(friction: float) -> float:
        env = TrackEnv(track="warehouse", max_cte=100.0)
        env.set_physics(friction=friction)
        env.reset(seed=0)
        for _ in range(40):
            env.step([0.0, 1.0])  # build speed
        yaw0 = env.car.yaw
        for _ in range(5):
            env.step([1.0, 1.0])
        return env.car.yaw - yaw0

    assert yaw_after_turn(0.3) < 0.6 * yaw_after_turn(1.0)  # slippery: the car understeers

    def speed_after(mass: float) -> float:
        env = TrackEnv()
        env.set_physics(mass=mass)
        env.reset(seed=0)
        for _ in range(20):
            env.step([0.0, 1.0])
        return env.car.speed

    assert speed_after(2.0) < 0.7 * speed_after(1.0)
    env = TrackEnv()
    env.set_physics(friction=0.5, mass=2.0)
    assert env.car.params.friction == 0.5 and env.car.params.mass == 2 * CarParams().mass


def test_difficulty_levels_set_top_speed_and_random_start() -> None:
    env = TrackEnv()
    assert env.difficulty_levels == len(DIFFICULTY) == 4
    env.set_difficulty(0)
    env.reset(seed=0)
    for _ in range(200):
        env.step([0.0, 1.0])
    assert env.car.speed == pytest.approx(4.0, abs=0.05)
    env.set_difficulty(3)
    assert env.car.max_speed == 10.0 and env.random_start
    with pytest.raises(InvalidInput, match="level"):
        env.set_difficulty(4)


def test_reset_option_switches_track_and_render_draws_the_car() -> None:
    env = TrackEnv(render_mode="rgb_array")
    env.reset(seed=0, options={"track": "warehouse"})
    assert env.track.name == "warehouse"
    frame = env.render()
    assert frame.shape == (180, 240, 3) and frame.dtype == np.uint8
    assert (frame == (220, 30, 30)).all(axis=2).any()  # the car is drawn


def test_new_generated_road_per_episode_when_track_seed_is_none() -> None:
    env = TrackEnv(track_seed=None)
    env.reset(seed=0)
    first = env.track.xs
    env.reset(seed=1)
    assert env.track.xs != first
    env.reset(seed=0)
    assert env.track.xs == first


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"track": "monaco"}, "track"), ({"max_steps": 0}, "max_steps"), ({"max_cte": -1.0}, "max_cte"),
     ({"n_rays": 100}, "n_rays"), ({"lookahead": ()}, "lookahead"), ({"render_mode": "human"}, "render_mode"),
     ({"max_laps": 0}, "max_laps")],
)
def test_bad_input_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        TrackEnv(**kwargs)
    assert err.value.field == field


def test_bad_car_parameters_and_options_name_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        CarParams(wheelbase=-1.0)
    assert err.value.field == "wheelbase"
    with pytest.raises(InvalidInput) as err:
        TrackEnv().reset(options={"track": "monaco"})
    assert err.value.field == "options.track" and "warehouse" in str(err.value)


# ------------------------------------------------------------------------------------------------ the expert


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_expert_laps_every_track_within_max_steps(name: str) -> None:
    env = TrackEnv(track=name)
    expert = PurePursuitExpert(env)
    obs, info = env.reset(seed=0)
    worst = 0.0
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(expert(obs))
        worst = max(worst, abs(info["cte"]))
    assert truncated and not terminated
    assert info["lap_count"] >= 1 and info["is_success"]
    assert worst < 0.75 * env.max_cte
    assert 15 < info["lap_time"] < 60


def test_expert_is_robust_to_starts_roads_and_slippery_tarmac() -> None:
    for seed in range(3):
        env = TrackEnv(track="generated-roads", track_seed=seed, random_start=True, max_laps=1, max_steps=1500)
        env.set_physics(friction=0.6, mass=1.3)
        expert = PurePursuitExpert(env)
        obs, info = env.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(expert.predict(obs)[0])
        assert info["lap_count"] == 1 and terminated  # max_laps=1 ends the episode successfully
    mountain = TrackEnv(track="mountain", max_laps=1)
    mountain.set_physics(friction=0.6)
    expert = PurePursuitExpert(mountain)
    obs, info = mountain.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = mountain.step(expert(obs))
    assert terminated and info["lap_count"] == 1  # a lap on the hairpins at 60% grip, not a crash


def test_expert_earns_far_more_than_random_driving() -> None:
    def episode_return(policy, env: TrackEnv) -> float:
        obs, _ = env.reset(seed=0)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        return total

    env = TrackEnv(track="mountain", max_steps=600)
    rng = np.random.default_rng(0)
    random_return = episode_return(lambda _: rng.uniform([-1, 0], [1, 1]), env)
    expert_return = episode_return(PurePursuitExpert(env), env)
    assert expert_return > 150 and expert_return > 10 * max(random_return, 1.0)
    assert math.isfinite(random_return)


def test_range_readings_measure_the_distance_to_the_road_edge() -> None:
    from flywheel.envs.track.render import ray_ranges

    track = TrackEnv(track="warehouse").track  # first leg: y = 0 from x = 0 to 40, road 4 m wide
    right, ahead, left = ray_ranges(track, 20.0, 0.5, 0.0, seg=40, n_rays=3, max_range=15.0)
    assert right * 15 == pytest.approx(2.5, abs=0.05)
    assert left * 15 == pytest.approx(1.5, abs=0.05)
    assert ahead == 1.0  # more than 15 m of road ahead
    env = TrackEnv(track="warehouse", n_rays=3)
    obs, _ = env.reset(seed=0)
    assert obs[-1] == 1.0 and obs[-3] * 15 == pytest.approx(2.0, abs=0.05)  # start corner: right edge 2 m away
