"""The four Reachy tasks as Gymnasium environments: API contract, determinism, limits, bad input, rendering."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from flywheel.envs.reachy import REACHY_ENVS, register
from flywheel.envs.reachy.gestures import OscillationDetector, ReachyNodEnv, ReachyShakeEnv
from flywheel.envs.reachy.tasks import ReachyLookAtEnv, ReachyTrackEnv
from flywheel.errors import FlywheelError, InvalidInput

TASKS = [ReachyLookAtEnv, ReachyTrackEnv, ReachyNodEnv, ReachyShakeEnv]
MODES = ["head_pose", "motors"]
INFO_KEYS = {"pointing_error_deg", "jerk", "action_rate", "energy", "episode_energy", "ik_scale", "is_success"}


def run(env: gym.Env, seed: int, steps: int, actions: np.ndarray | None = None):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards = [obs], []
    for i in range(steps):
        action = actions[i] if actions is not None else rng.uniform(-1, 1, env.action_space.shape)
        obs, reward, _, _, _ = env.step(action.astype(np.float32))
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", TASKS, ids=lambda c: c.__name__)
def test_check_env_passes(cls, mode):
    check_env(cls(action_mode=mode), skip_render_check=True)


@pytest.mark.parametrize("cls", TASKS, ids=lambda c: c.__name__)
def test_spaces_per_mode(cls):
    head, motors = cls(action_mode="head_pose"), cls(action_mode="motors")
    assert head.action_space.shape == (4,) and motors.action_space.shape == (7,)
    assert motors.observation_space.shape[0] == head.observation_space.shape[0] + 3
    assert head.observation_space.shape[0] == 22 + 4 + cls.task_obs_size


def test_registered_ids_make_the_tasks_with_kwargs():
    register()
    for env_id in REACHY_ENVS:
        env = gym.make(env_id, action_mode="motors")
        assert env.action_space.shape == (7,)
        assert env.unwrapped.spec.id == env_id


@pytest.mark.parametrize("cls", TASKS, ids=lambda c: c.__name__)
def test_same_seed_same_trajectory_different_seed_different_task(cls):
    first_obs, first_rewards = run(cls(), seed=7, steps=30)
    again_obs, again_rewards = run(cls(), seed=7, steps=30)
    np.testing.assert_array_equal(first_obs, again_obs)
    np.testing.assert_array_equal(first_rewards, again_rewards)
    other_obs, _ = run(cls(), seed=8, steps=30)
    assert not np.array_equal(first_obs, other_obs)


@pytest.mark.parametrize("mode", MODES)
def test_observations_stay_order_one_and_info_is_complete(mode):
    env = ReachyTrackEnv(action_mode=mode, episode_steps=120)
    obs, info = env.reset(seed=0)
    assert info.keys() >= INFO_KEYS
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(120):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        worst = max(worst, float(np.abs(obs).max()))
        assert -0.2 <= reward <= 1.25 and not terminated  # action-rate penalty is at most 0.05 · 2²
        assert INFO_KEYS | {"mean_error_second_half_deg"} <= info.keys()
        direction, error = obs[18:21], obs[21]
        assert np.linalg.norm(direction) == pytest.approx(1.0, abs=1e-5)
        assert np.arccos(np.clip(direction[0], -1, 1)) == pytest.approx(error, abs=1e-4)
        assert np.degrees(error) == pytest.approx(info["pointing_error_deg"], abs=1e-3)
    assert truncated
    assert worst < 10.0
    assert info["episode_energy"] > 0 and info["jerk"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_actions_are_clipped_to_the_actuator_ranges(mode):
    env = ReachyLookAtEnv(action_mode=mode)
    big = np.full((20, env.action_space.shape[0]), 5.0)
    clipped_obs, _ = run(env, seed=1, steps=20, actions=big)
    low, high = env.model.ctrl_low, env.model.ctrl_high
    ctrl = env._d.ctrl[env.model.ctrl_ids]
    assert np.all(ctrl >= low - 1e-9) and np.all(ctrl <= high + 1e-9)
    ones_obs, _ = run(env, seed=1, steps=20, actions=np.ones_like(big))
    np.testing.assert_array_equal(clipped_obs, ones_obs)
    rng = np.random.default_rng(2)
    env.reset(seed=2)
    for _ in range(50):
        env.step(rng.uniform(-3, 3, env.action_space.shape))
        ctrl = env._d.ctrl[env.model.ctrl_ids]
        assert np.all(ctrl >= low - 1e-9) and np.all(ctrl <= high + 1e-9)


def test_head_pose_action_is_projected_when_out_of_reach():
    env = ReachyLookAtEnv()
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones(4, dtype=np.float32))  # roll 30°, pitch 45°, yaw 45°, z +2 cm
    assert 0.0 < info["ik_scale"] < 1.0
    _, _, _, _, info = env.step(np.array([0.0, 0.3, 0.3, 0.0], dtype=np.float32))
    assert info["ik_scale"] == 1.0


def test_lookat_targets_follow_the_settings():
    env = ReachyLookAtEnv(distance_range=(0.4, 0.4), azimuth_range_deg=(20, 30), height_range=(0.05, 0.05))
    for seed in range(5):
        env.reset(seed=seed)
        x, y, z = env.target_position
        assert np.hypot(x, y) == pytest.approx(0.4) and z == pytest.approx(0.05)
        assert 20 <= np.degrees(np.arctan2(y, x)) <= 30
        np.testing.assert_allclose(env._d.mocap_pos[env.model.target_mocap], env.target_position)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: ReachyLookAtEnv(action_mode="torque"), "action_mode"),
        (lambda: ReachyLookAtEnv(camera="ceiling"), "camera"),
        (lambda: ReachyLookAtEnv(render_mode="human"), "render_mode"),
        (lambda: ReachyLookAtEnv(azimuth_range_deg=(-60, 10)), "azimuth_range_deg"),
        (lambda: ReachyLookAtEnv(distance_range=(0.1, 0.5)), "distance_range"),
        (lambda: ReachyLookAtEnv(height_range=(0.2, 0.1)), "height_range"),
        (lambda: ReachyTrackEnv(frequency_range_hz=(0.1, 3.0)), "frequency_range_hz"),
        (lambda: ReachyTrackEnv(amplitude_range_deg=(10, 60)), "amplitude_range_deg"),
        (lambda: ReachyNodEnv(amplitude_range_deg=(10, 45)), "amplitude_range_deg"),
        (lambda: ReachyShakeEnv(counts=(5,)), "counts"),
        (lambda: ReachyNodEnv(period_s=0.1), "period_s"),
        (lambda: ReachyNodEnv(episode_steps=60), "episode_steps"),
        (lambda: ReachyTrackEnv(width=5), "width"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(make, field):
    with pytest.raises(InvalidInput) as exc:
        make()
    assert exc.value.field == field
    assert exc.value.allowed
    assert field in str(exc.value)


def test_unknown_action_mode_lists_the_allowed_modes():
    with pytest.raises(InvalidInput) as exc:
        ReachyNodEnv(action_mode="joints")
    assert exc.value.allowed == ["motors", "head_pose"]


def test_nan_action_is_refused():
    env = ReachyLookAtEnv()
    env.reset(seed=0)
    with pytest.raises(InvalidInput):
        env.step(np.array([np.nan, 0, 0, 0], dtype=np.float32))


def test_oscillation_detector_counts_half_waves_with_hysteresis():
    det = OscillationDetector(threshold=0.5)
    signal = np.sin(np.linspace(0, 6 * np.pi, 300))  # three cycles, amplitude 1
    for value in signal + 0.1 * np.sin(np.linspace(0, 200, 300)):  # with jitter that must not count
        det.update(float(value))
    assert det.cycles == 3 and len(det.peaks) == 6
    assert all(1.0 <= p <= 1.1 for p in det.peaks)


def test_gesture_obs_announces_the_request():
    env = ReachyShakeEnv(request_range_s=(0.4, 0.4), counts=(2,), amplitude_range_deg=(18, 18))
    obs, info = env.reset(seed=0)
    assert info["request_step"] == 20 and obs[-4] == 0.0
    for _ in range(25):
        obs, *_ = env.step(np.zeros(4, dtype=np.float32))
    assert obs[-4] == 1.0
    assert obs[-3] == pytest.approx(18 / 45) and obs[-2] == pytest.approx(0.5) and 0 < obs[-1] < 1


def _render_or_skip(env):
    env.reset(seed=0)
    try:
        return env.render()
    except FlywheelError as exc:  # no EGL/OSMesa on this machine
        pytest.skip(f"no offscreen GL backend: {exc}")


@pytest.mark.parametrize("camera", ["eye", "studio"])
def test_rendering_returns_an_rgb_image(camera):
    env = ReachyLookAtEnv(render_mode="rgb_array", camera=camera, width=96, height=64)
    image = _render_or_skip(env)
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.std() > 1.0  # not a blank frame
    env.close()


def test_eye_camera_sees_the_red_target_when_pointing_at_it():
    env = ReachyLookAtEnv(render_mode="rgb_array", camera="eye", width=64, height=48)
    _render_or_skip(env)
    model, d = env.model, env._d
    pitch, yaw = env.reference_pose(0)[1:3]
    d.qpos[:] = model.home_qpos  # pose the head directly: kinematic check of the camera, not of control
    ctrl = np.concatenate([[0.0], env.kinematics.motor_angles(0.0, pitch, yaw, 0.0)])
    d.ctrl[model.ctrl_ids] = ctrl
    mujoco.mj_step(model.mj, d, nstep=750)
    image = env.render().astype(int)
    centre = image[18:30, 26:38]
    redness = centre[..., 0] - centre[..., 1:].max(axis=-1)
    assert redness.max() > 80
    env.close()


def test_render_is_none_without_render_mode():
    env = ReachyLookAtEnv()
    env.reset(seed=0)
    assert env.render() is None
