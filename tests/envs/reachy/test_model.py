"""The Reachy Mini MJCF as the tasks see it: names, ranges, cameras, home pose."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from flywheel.envs.reachy.kinematics import CAMERA_OFFSET, STEWART_HIGH, STEWART_LOW
from flywheel.envs.reachy.model import (
    ANTENNA_ACTUATORS,
    CONTROLLED_ACTUATORS,
    HEAD_Z_OFFSET,
    load_model,
    scene_path,
)
from flywheel.errors import InvalidInput


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_scene_comes_from_the_wheel():
    assert scene_path().name == "scene.xml"
    assert scene_path().exists()


def test_model_has_nine_actuators_in_the_documented_order(model):
    assert model.mj.nu == 9
    assert model.actuator_names == [*CONTROLLED_ACTUATORS, *ANTENNA_ACTUATORS]
    assert model.mj.opt.timestep == pytest.approx(0.002)


def test_stewart_ranges_match_the_kinematics_constants(model):
    np.testing.assert_allclose(model.ctrl_low[1:], STEWART_LOW, atol=1e-9)
    np.testing.assert_allclose(model.ctrl_high[1:], STEWART_HIGH, atol=1e-9)
    assert model.ctrl_low[0] == pytest.approx(-np.radians(160), abs=1e-6)


def test_controlled_joints_are_the_actuated_hinges(model):
    names = [model.mj.joint(int(model.mj.actuator_trnid[i, 0])).name for i in model.ctrl_ids]
    assert names == list(CONTROLLED_ACTUATORS)


def test_home_pose_is_level_at_the_kinematics_height(model):
    d = mujoco.MjData(model.mj)
    d.qpos[:] = model.home_qpos
    mujoco.mj_forward(model.mj, d)
    rot = d.site_xmat[model.head_site].reshape(3, 3)
    assert np.degrees(np.arccos(np.clip(rot[0, 0], -1, 1))) < 1.0
    assert d.site_xpos[model.head_site][2] == pytest.approx(HEAD_Z_OFFSET, abs=1e-3)


def test_eye_camera_sits_where_the_kinematics_says_and_looks_forward(model):
    d = mujoco.MjData(model.mj)
    d.qpos[:] = model.home_qpos
    mujoco.mj_forward(model.mj, d)
    rot = d.site_xmat[model.head_site].reshape(3, 3)
    offset = rot.T @ (d.cam_xpos[model.eye_camera] - d.site_xpos[model.head_site])
    np.testing.assert_allclose(offset, CAMERA_OFFSET, atol=5e-4)
    axis = -d.cam_xmat[model.eye_camera].reshape(3, 3)[:, 2]  # MuJoCo cameras look along their -z
    np.testing.assert_allclose(rot.T @ axis, [1.0, 0.0, 0.0], atol=1e-3)


def test_every_env_gets_its_own_model(model):
    other = load_model()
    assert other.mj is not model.mj
    other.mj.opt.timestep = 0.01
    assert model.mj.opt.timestep == pytest.approx(0.002)


def test_target_marker_does_not_collide(model):
    geom = model.mj.geom("target_geom")
    assert geom.contype[0] == 0 and geom.conaffinity[0] == 0


def test_unknown_camera_is_refused(model):
    with pytest.raises(InvalidInput) as exc:
        model.camera_id("ceiling")
    assert exc.value.field == "camera"
    assert exc.value.allowed == ["eye", "studio"]
