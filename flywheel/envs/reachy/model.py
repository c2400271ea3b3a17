"""The Reachy Mini MuJoCo model: where it lives, what is in it, and the state it starts from.

The MJCF ships inside the ``reachy-mini`` wheel (installed with ``--no-deps``; the package itself is never
imported, only located). :func:`compile_model` compiles ``scene.xml`` through :class:`mujoco.MjSpec` and adds one
thing: a mocap body ``target`` (a small red sphere without collisions) that the tasks move to show what the
robot should look at. Nothing else is changed, so the dynamics are the robot's own.

What the model contains (discovered from the compiled model and checked in ``tests/envs/reachy/test_model.py``):

- 9 position actuators (``kp=10``, ``kv=0.1``, force range ±20): ``yaw_body`` (body rotation, ±160°),
  ``stewart_1`` … ``stewart_6`` (the Stewart platform motors that move the head) and ``right_antenna`` /
  ``left_antenna`` (held at 0 by the tasks: the antennas do not move the head).
- 16 joints: the 7 actuated hinges above plus the 2 antenna hinges and 7 passive ball joints
  (``passive_1`` … ``passive_7``); the head (body ``xl_330``) hangs off ``passive_7`` and 5 ``connect``
  equality constraints close the Stewart loops.
- sites: ``head`` (the head frame: +x forward, +y left, +z up; its world pose minus ``HEAD_Z_OFFSET`` in z is
  the head pose the kinematics speak about), ``camera`` / ``camera_optical`` and the ``closing_*`` loop sites.
- cameras: ``eye_camera`` (fixed in the head, 80° vertical field of view, looks along the head's +x axis from
  (0.0395, 0, 0.0525) m in the head frame) and ``studio_close`` (a world camera that follows the head).
- timestep 2 ms (500 Hz physics); the tasks step it 10 times per 50 Hz control step.

Example:
    >>> model = load_model()
    >>> model.mj.nu, model.actuator_names[0], model.mj.opt.timestep
    (9, 'yaw_body', 0.002)
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"  # headless machines: offscreen rendering through EGL (must precede the import)

import mujoco
import numpy as np

from flywheel.errors import FlywheelError, InvalidInput

#: The actuators the policy commands, in action order: the body yaw then the six Stewart motors.
CONTROLLED_ACTUATORS: tuple[str, ...] = (
    "yaw_body",
    "stewart_1",
    "stewart_2",
    "stewart_3",
    "stewart_4",
    "stewart_5",
    "stewart_6",
)
#: Actuators present in the model but held at 0 by every task.
ANTENNA_ACTUATORS: tuple[str, ...] = ("right_antenna", "left_antenna")
#: The camera names a task accepts for rendering, mapped to the model's camera names.
CAMERAS: dict[str, str] = {"eye": "eye_camera", "studio": "studio_close"}
#: The head site's height above the head-pose origin, from ``kinematics_data.json`` (checked at load).
HEAD_Z_OFFSET = 0.177
#: Physics timestep the tasks expect (the model's own); a control step is ``SUBSTEPS`` of them.
TIMESTEP = 0.002
SUBSTEPS = 10
#: Seconds of physics run once at load to let the head settle on the neutral pose.
SETTLE_SECONDS = 1.5


class ModelFilesMissing(FlywheelError):
    """The ``reachy-mini`` wheel (model files) is not installed."""


def package_root() -> Path:
    """The folder of the installed ``reachy_mini`` package, located without importing it.

    Example:
        >>> (package_root() / "assets" / "kinematics_data.json").exists()
        True
    """
    spec = importlib.util.find_spec("reachy_mini")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            "the Reachy Mini model files are not installed", hint="pip install --no-deps reachy-mini==1.12.0"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def scene_path() -> Path:
    """Path of the robot's MJCF scene (robot + floor + lights)."""
    return package_root() / "descriptions" / "reachy_mini" / "mjcf" / "scene.xml"


def kinematics_data_path() -> Path:
    """Path of the Stewart-platform geometry used by the analytical kinematics."""
    return package_root() / "assets" / "kinematics_data.json"


@lru_cache(maxsize=1)
def kinematics_data() -> dict[str, Any]:
    """The parsed ``kinematics_data.json`` (motor arm and rod lengths, head offset, one entry per motor)."""
    return json.loads(kinematics_data_path().read_text())


@dataclass
class ReachyModel:
    """A compiled Reachy Mini model with every index the tasks need, looked up once.

    Attributes:
        mj: the compiled :class:`mujoco.MjModel` (one per environment: never shared between envs).
        actuator_names: all actuator names in model order.
        ctrl_ids: actuator ids of :data:`CONTROLLED_ACTUATORS`, in that order.
        ctrl_low, ctrl_high: their control ranges (rad).
        qpos_ids, dof_ids: qpos / qvel addresses of the joints those actuators drive.
        head_site: id of the ``head`` site; eye_camera / studio_camera: camera ids.
        target_mocap: mocap index of the ``target`` body.
        home_qpos: joint positions after settling on the neutral head pose (applied on every reset).
        home_ctrl: the actuator targets that hold the neutral pose.
        home_head_position: world position of the ``head`` site in that pose (about (0, 0, 0.177) m).
    """

    mj: mujoco.MjModel
    actuator_names: list[str]
    ctrl_ids: np.ndarray
    ctrl_low: np.ndarray
    ctrl_high: np.ndarray
    qpos_ids: np.ndarray
    dof_ids: np.ndarray
    head_site: int
    eye_camera: int
    studio_camera: int
    target_mocap: int
    home_qpos: np.ndarray = field(default_factory=lambda: np.zeros(0))
    home_ctrl: np.ndarray = field(default_factory=lambda: np.zeros(0))
    home_head_position: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def camera_id(self, name: str) -> int:
        """The model camera id for a task camera name (``"eye"`` or ``"studio"``).

        Example:
            >>> m = load_model()
            >>> m.camera_id("eye") == m.eye_camera
            True
        """
        if name not in CAMERAS:
            raise InvalidInput(f"unknown camera {name!r}", field="camera", allowed=sorted(CAMERAS))
        return self.eye_camera if name == "eye" else self.studio_camera


def _compile_spec() -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(scene_path()))
    body = spec.worldbody.add_body()
    body.name = "target"
    body.mocap = True
    body.pos = [0.4, 0.0, 0.03]
    geom = body.add_geom()
    geom.name = "target_geom"
    geom.type = mujoco.mjtGeom.mjGEOM_SPHERE
    geom.size = [0.02, 0.0, 0.0]
    geom.rgba = [0.9, 0.15, 0.1, 1.0]
    geom.contype = 0
    geom.conaffinity = 0
    geom.mass = 0.0
    return spec.compile()


def load_model() -> ReachyModel:
    """A private copy of the compiled model (compiled and settled once per process, then copied: ~0.1 s).

    Example:
        >>> load_model().mj is load_model().mj
        False
    """
    template = _template()
    return dataclasses.replace(template, mj=copy.deepcopy(template.mj))


@lru_cache(maxsize=1)
def _template() -> ReachyModel:
    return compile_model()


def compile_model(home_ctrl: np.ndarray | None = None) -> ReachyModel:
    """Compile the Reachy Mini scene, look up every index once and compute the settled home state.

    Args:
        home_ctrl: targets of :data:`CONTROLLED_ACTUATORS` for the home pose; by default the neutral head pose
            from the analytical IK (the head level, looking along +x, body yaw 0).

    Returns:
        A :class:`ReachyModel` whose ``mj`` is a fresh model (safe to modify per environment).

    Example:
        >>> m = compile_model()
        >>> [m.actuator_names[i] for i in m.ctrl_ids][:2]
        ['yaw_body', 'stewart_1']
    """
    mj = _compile_spec()
    if abs(mj.opt.timestep - TIMESTEP) > 1e-12:  # the 50 Hz control contract depends on it
        raise InvalidInput(f"model timestep is {mj.opt.timestep}", field="timestep", allowed=TIMESTEP)
    data = kinematics_data()
    if abs(float(data["head_z_offset"]) - HEAD_Z_OFFSET) > 1e-9:
        raise InvalidInput("kinematics_data.json head_z_offset changed", field="head_z_offset", allowed=HEAD_Z_OFFSET)

    names = [mj.actuator(i).name for i in range(mj.nu)]
    ctrl_ids = np.array([names.index(n) for n in CONTROLLED_ACTUATORS])
    joint_ids = mj.actuator_trnid[ctrl_ids, 0]
    target_body = mj.body("target").id
    model = ReachyModel(
        mj=mj,
        actuator_names=names,
        ctrl_ids=ctrl_ids,
        ctrl_low=mj.actuator_ctrlrange[ctrl_ids, 0].copy(),
        ctrl_high=mj.actuator_ctrlrange[ctrl_ids, 1].copy(),
        qpos_ids=mj.jnt_qposadr[joint_ids].copy(),
        dof_ids=mj.jnt_dofadr[joint_ids].copy(),
        head_site=mj.site("head").id,
        eye_camera=mj.camera(CAMERAS["eye"]).id,
        studio_camera=mj.camera(CAMERAS["studio"]).id,
        target_mocap=int(mj.body_mocapid[target_body]),
    )
    if home_ctrl is None:
        from flywheel.envs.reachy.kinematics import HeadKinematics

        home_ctrl = np.concatenate([[0.0], HeadKinematics().motor_angles(0.0, 0.0, 0.0, 0.0)])
    model.home_ctrl = np.asarray(home_ctrl, dtype=np.float64)
    _settle(model)
    return model


def _settle(model: ReachyModel) -> None:
    """Run the physics from the model's zero pose with the home targets until the head rests; record the pose."""
    d = mujoco.MjData(model.mj)
    d.ctrl[model.ctrl_ids] = model.home_ctrl
    mujoco.mj_step(model.mj, d, nstep=round(SETTLE_SECONDS / TIMESTEP))
    d.qvel[:] = 0.0
    mujoco.mj_forward(model.mj, d)
    model.home_qpos = d.qpos.copy()
    model.home_head_position = d.site_xpos[model.head_site].copy()
