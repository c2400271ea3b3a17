"""The analytical IK against the simulator: a commanded head pose is the pose MuJoCo reaches."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from flywheel.envs.reachy.kinematics import (
    CAMERA_OFFSET,
    HeadKinematics,
    euler_from_matrix,
    look_at_angles,
    rotation_matrix,
)
from flywheel.envs.reachy.model import HEAD_Z_OFFSET, load_model


@pytest.fixture(scope="module")
def sim():
    model = load_model()
    return model, mujoco.MjData(model.mj), HeadKinematics()


def reached_pose(sim, roll: float, pitch: float, yaw: float, z: float = 0.0, seconds: float = 1.5):
    model, d, kin = sim
    mujoco.mj_resetData(model.mj, d)
    d.qpos[:] = model.home_qpos
    d.ctrl[model.ctrl_ids] = np.concatenate([[0.0], kin.motor_angles(roll, pitch, yaw, z)])
    mujoco.mj_step(model.mj, d, nstep=round(seconds / model.mj.opt.timestep))
    mujoco.mj_forward(model.mj, d)
    r, p, y = euler_from_matrix(d.site_xmat[model.head_site].reshape(3, 3))
    return np.degrees([r, p, y]), d.site_xpos[model.head_site][2] - HEAD_Z_OFFSET


def test_yaw_30_degrees_is_reached_in_mujoco(sim):
    (roll, pitch, yaw), _ = reached_pose(sim, 0.0, 0.0, math.radians(30))
    assert yaw == pytest.approx(30.0, abs=1.5)
    assert abs(roll) < 1.5 and abs(pitch) < 1.5


@pytest.mark.parametrize("axis, degrees", [(1, 20.0), (1, -20.0), (0, 15.0), (2, -40.0)])
def test_pitch_roll_and_yaw_targets_are_reached(sim, axis, degrees):
    target = [0.0, 0.0, 0.0]
    target[axis] = math.radians(degrees)
    reached, _ = reached_pose(sim, *target)
    np.testing.assert_allclose(reached, np.degrees(target), atol=1.5)


def test_height_target_is_reached(sim):
    _, z = reached_pose(sim, 0.0, 0.0, 0.0, 0.01)
    assert z == pytest.approx(0.01, abs=1.5e-3)


def test_euler_round_trip():
    rng = np.random.default_rng(0)
    for angles in rng.uniform(-1.2, 1.2, size=(20, 3)):
        np.testing.assert_allclose(euler_from_matrix(rotation_matrix(*angles)), angles, atol=1e-9)


def test_unreachable_pose_raises_and_projection_finds_a_reachable_one():
    kin = HeadKinematics()
    with pytest.raises(ValueError, match="out of reach"):
        kin.motor_angles(math.radians(30), math.radians(45), 0.0, 0.02)
    angles, scale = kin.project(math.radians(30), math.radians(45), 0.0, 0.02)
    assert kin.feasible(angles) and 0.0 < scale < 1.0
    reachable, scale = kin.project(0.0, math.radians(20), math.radians(20), 0.0)
    assert scale == 1.0
    np.testing.assert_allclose(reachable, kin.motor_angles(0.0, math.radians(20), math.radians(20), 0.0))


def test_look_at_angles_put_the_target_on_the_camera_axis():
    rng = np.random.default_rng(1)
    head = np.array([0.0, 0.0, HEAD_Z_OFFSET])
    for _ in range(20):
        target = np.array([rng.uniform(0.2, 0.6), rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.4)])
        pitch, yaw = look_at_angles(target, head)
        rot = rotation_matrix(0.0, pitch, yaw)
        to_target = target - (head + rot @ np.array(CAMERA_OFFSET))
        cos = rot[:, 0] @ to_target / np.linalg.norm(to_target)
        assert math.degrees(math.acos(min(cos, 1.0))) < 1e-6
