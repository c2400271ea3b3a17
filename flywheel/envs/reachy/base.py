"""The base of every Reachy Mini head task: actions, physics, observations, reward and metrics.

Every task is "point the eye camera along a direction that the task chooses": a static object on the table
(LookAt), a moving object (Track) or a gesture's reference direction (Nod, Shake). The base class owns
everything that is the same; a task class only chooses the target and judges success.

**Control.** 50 Hz: each :meth:`ReachyEnv.step` writes the actuator targets once and runs 10 physics steps of
the model's 2 ms timestep (500 Hz). The antennas are held at 0.

**Actions** (``float32`` in ``[-1, 1]``, clipped):

- ``action_mode="motors"`` (7): targets of ``yaw_body, stewart_1..6``, mapped linearly onto each actuator's
  ``ctrlrange`` (-1 -> low, +1 -> high).
- ``action_mode="head_pose"`` (4): ``roll, pitch, yaw, z`` targets scaled by
  :data:`~flywheel.envs.reachy.kinematics.HEAD_POSE_LIMITS` (±30°, ±45°, ±45°, ±0.02 m), turned into Stewart
  motor angles by the analytical IK (unreachable poses are moved towards neutral until reachable); the body
  yaw stays at 0.

**Observation** (``float32``, every entry O(1), clipped to ±10), in this order:

====================  ====  =========================================================================
block                 size  meaning
====================  ====  =========================================================================
joint positions       7     the 7 controlled joints, normalised like the motor actions
joint velocities      7     rad/s × 0.1
head pose             4     roll, pitch, yaw, z divided by their head-pose limits
target direction      3     unit vector from the eye camera to the target, in the head frame
pointing error        1     angle between the camera axis and that direction (rad)
previous action       4|7   the last action applied (zeros after reset)
task block            k     task-specific, documented on each task
====================  ====  =========================================================================

**Reward** (per step): ``exp(-error / 0.25 rad) + 0.25·[error < 5°] - 0.05·mean((a_t - a_{t-1})²)``: dense,
positive when pointing well, at most 1.25 per step, with a small action-rate (smoothness) penalty.

**Info** (every step): ``pointing_error_deg``; ``jerk`` (norm of the third finite difference of the head's
roll/pitch/yaw at 50 Hz, rad/s³); ``action_rate`` (``|a_t - a_{t-1}|``); ``energy`` (J, this step:
``Σ_actuators |force · velocity| · 0.02 s``, sampled at the end of the control step); ``episode_energy``
(the running sum); ``ik_scale`` (1 unless the head-pose action was out of reach and scaled towards neutral);
``is_success`` (the task's criterion, see each task); plus the task's own keys.

Episodes never terminate; they are truncated after ``episode_steps`` control steps.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from flywheel.envs.reachy.kinematics import CAMERA_OFFSET, HEAD_POSE_LIMITS, HeadKinematics, euler_from_matrix
from flywheel.envs.reachy.model import CAMERAS, HEAD_Z_OFFSET, SUBSTEPS, TIMESTEP, load_model
from flywheel.errors import FlywheelError, InvalidInput

ACTION_MODES: tuple[str, ...] = ("motors", "head_pose")
CONTROL_DT = TIMESTEP * SUBSTEPS
POINTING_TOLERANCE_DEG = 5.0
REWARD_SCALE_RAD = 0.25
ON_TARGET_BONUS = 0.25
ACTION_RATE_PENALTY = 0.05
VELOCITY_SCALE = 0.1
OBS_BOUND = 10.0
_POSE_LIMITS = np.array([HEAD_POSE_LIMITS[k] for k in ("roll", "pitch", "yaw", "z")])
_CAMERA_OFFSET = np.array(CAMERA_OFFSET)
_BASE_OBS = 7 + 7 + 4 + 3 + 1


class ReachyEnv(gym.Env[np.ndarray, np.ndarray]):
    """Base class of the Reachy Mini head tasks (see the module docstring for spaces, reward and info).

    Subclasses set ``default_episode_steps`` and ``task_obs_size`` and implement ``_reset_task``,
    ``_update_target`` (set ``self._target_point`` or ``self._target_direction`` for the current step),
    ``_write_task_obs``, ``_update_success`` and optionally ``_task_info``; ``reference_pose`` gives the pose a
    perfect controller would hold now (used by the scripted experts).

    Args:
        action_mode: ``"head_pose"`` or ``"motors"``.
        render_mode: ``None`` or ``"rgb_array"``.
        camera: ``"studio"`` (a world camera looking at the robot) or ``"eye"`` (the head camera).
        width, height: image size for ``rgb_array`` rendering (16..2048).
        episode_steps: control steps per episode (50 per second); each task has its own default.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": round(1 / CONTROL_DT)}
    default_episode_steps: ClassVar[int] = 100
    task_obs_size: ClassVar[int] = 0

    def __init__(
        self,
        *,
        action_mode: str = "head_pose",
        render_mode: str | None = None,
        camera: str = "studio",
        width: int = 320,
        height: int = 240,
        episode_steps: int | None = None,
    ) -> None:
        if action_mode not in ACTION_MODES:
            raise InvalidInput(f"unknown action mode {action_mode!r}", field="action_mode", allowed=list(ACTION_MODES))
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidInput(f"unknown render mode {render_mode!r}", field="render_mode", allowed=["rgb_array", None])
        if camera not in CAMERAS:
            raise InvalidInput(f"unknown camera {camera!r}", field="camera", allowed=sorted(CAMERAS))
        for name, value in (("width", width), ("height", height)):
            if not isinstance(value, int) or not 16 <= value <= 2048:
                raise InvalidInput(f"{value!r} is out of range", field=name, allowed="integer 16..2048")
        steps = self.default_episode_steps if episode_steps is None else episode_steps
        if not isinstance(steps, int) or not 10 <= steps <= 100_000:
            raise InvalidInput(f"{steps!r} is out of range", field="episode_steps", allowed="integer 10..100000")
        self.action_mode = action_mode
        self.render_mode = render_mode
        self.camera = camera
        self.width, self.height = width, height
        self.episode_steps = steps

        self.model = load_model()
        self._m = self.model.mj
        self._d = mujoco.MjData(self._m)
        self.kinematics = HeadKinematics()
        self._renderer: mujoco.Renderer | None = None

        self._ctrl_ids = self.model.ctrl_ids
        self._ctrl_low = self.model.ctrl_low
        self._ctrl_span = self.model.ctrl_high - self.model.ctrl_low
        self._qpos_ids = self.model.qpos_ids
        self._dof_ids = self.model.dof_ids
        self._site = self.model.head_site
        self._mocap = self.model.target_mocap

        n_act = 4 if action_mode == "head_pose" else 7
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        obs_size = _BASE_OBS + n_act + self.task_obs_size
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(obs_size,), dtype=np.float32)
        self._obs = np.zeros(obs_size, dtype=np.float32)
        self._act_slice = slice(_BASE_OBS, _BASE_OBS + n_act)
        self._task_slice = slice(_BASE_OBS + n_act, obs_size)

        self._prev_action = np.zeros(n_act)
        self._ctrl = self.model.home_ctrl.copy()
        self._angle_hist = np.zeros((4, 3))
        self._step = 0
        self._target_point: np.ndarray | None = None
        self._target_direction = np.array([1.0, 0.0, 0.0])
        self.head_pose = np.zeros(4)
        self.head_rotation = np.eye(3)
        self.head_position = np.array([0.0, 0.0, HEAD_Z_OFFSET])
        self.pointing_error = 0.0
        self._target_in_head = np.array([1.0, 0.0, 0.0])
        self._episode_energy = 0.0
        self._ik_scale = 1.0
        self.is_success = False

    # ----------------------------------------------------------------- task hooks
    def _reset_task(self, rng: np.random.Generator, options: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def _update_target(self, step: int) -> None:
        raise NotImplementedError

    def _write_task_obs(self, out: np.ndarray) -> None:
        return None

    def _update_success(self) -> None:
        raise NotImplementedError

    def _task_info(self) -> dict[str, Any]:
        return {}

    def reference_pose(self, step: int) -> np.ndarray:
        """The head pose ``(roll, pitch, yaw, z)`` a perfect controller would have at control step ``step``."""
        raise NotImplementedError

    # ----------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Put the robot in its settled neutral pose and draw a new task instance from the seeded generator."""
        super().reset(seed=seed)
        m, d = self._m, self._d
        mujoco.mj_resetData(m, d)
        d.qpos[:] = self.model.home_qpos
        self._ctrl[:] = self.model.home_ctrl
        d.ctrl[self._ctrl_ids] = self._ctrl
        self._step = 0
        self._prev_action[:] = 0.0
        self._episode_energy = 0.0
        self._ik_scale = 1.0
        self.is_success = False
        self._reset_task(self.np_random, options)
        self._update_target(0)
        mujoco.mj_forward(m, d)
        self._read_state()
        self._angle_hist[:] = self.head_pose[:3]
        self._update_success()
        return self._observation(), self._info(0.0, 0.0, 0.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one 50 Hz action, run 10 physics steps, and score the new state."""
        a = np.asarray(action, dtype=np.float64).reshape(self._prev_action.shape)
        if not math.isfinite(a.sum()):  # NaN or inf anywhere makes the sum non-finite
            raise InvalidInput("action contains NaN or inf", field="action", allowed="finite values in [-1, 1]")
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        self._apply_action(a)
        m, d = self._m, self._d
        mujoco.mj_step(m, d, nstep=SUBSTEPS)
        self._step += 1
        self._update_target(self._step)
        self._read_state()
        hist = self._angle_hist
        hist[:-1] = hist[1:]
        hist[-1] = self.head_pose[:3]
        third = hist[3] - 3.0 * hist[2] + 3.0 * hist[1] - hist[0]
        jerk = math.sqrt(float(third @ third)) / CONTROL_DT**3
        energy = float(np.abs(d.actuator_force * d.actuator_velocity).sum()) * CONTROL_DT
        self._episode_energy += energy
        delta = a - self._prev_action
        delta_sq = float(delta @ delta)
        action_rate = math.sqrt(delta_sq)
        self._prev_action[:] = a
        self._update_success()
        error = self.pointing_error
        reward = (
            math.exp(-error / REWARD_SCALE_RAD)
            + (ON_TARGET_BONUS if error < math.radians(POINTING_TOLERANCE_DEG) else 0.0)
            - ACTION_RATE_PENALTY * delta_sq / delta.size
        )
        truncated = self._step >= self.episode_steps
        return self._observation(), reward, False, truncated, self._info(jerk, action_rate, energy)

    def render(self) -> np.ndarray | None:
        """An ``(height, width, 3)`` ``uint8`` image from ``self.camera`` when ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            vis = self._m.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, self.width), max(vis.offheight, self.height)
            try:
                self._renderer = mujoco.Renderer(self._m, height=self.height, width=self.width)
            except Exception as exc:  # no GL context: say what to do instead of a bare traceback
                raise FlywheelError(
                    f"offscreen rendering is unavailable: {exc}", hint="set MUJOCO_GL=egl (or osmesa) before importing"
                ) from exc
        self._renderer.update_scene(self._d, camera=self.model.camera_id(self.camera))
        return self._renderer.render().copy()

    def close(self) -> None:
        """Release the renderer, if one was created."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ----------------------------------------------------------------- internals
    def _apply_action(self, a: np.ndarray) -> None:
        if self.action_mode == "motors":
            self._ctrl[:] = self._ctrl_low + (a + 1.0) * 0.5 * self._ctrl_span
        else:
            pose = a * _POSE_LIMITS
            angles, self._ik_scale = self.kinematics.project(pose[0], pose[1], pose[2], pose[3])
            self._ctrl[0] = 0.0
            self._ctrl[1:] = angles
        self._d.ctrl[self._ctrl_ids] = self._ctrl

    def _read_state(self) -> None:
        d = self._d
        rot = d.site_xmat[self._site].reshape(3, 3).copy()
        self.head_rotation = rot
        self.head_position = d.site_xpos[self._site].copy()
        roll, pitch, yaw = euler_from_matrix(rot)
        self.head_pose[:] = (roll, pitch, yaw, self.head_position[2] - HEAD_Z_OFFSET)
        if self._target_point is not None:
            camera = self.head_position + rot @ _CAMERA_OFFSET
            v = self._target_point - camera
            self._target_direction = v / max(math.sqrt(float(v @ v)), 1e-9)
        local = rot.T @ self._target_direction
        self._target_in_head = local
        self.pointing_error = math.atan2(math.hypot(local[1], local[2]), local[0])

    def _observation(self) -> np.ndarray:
        d, obs = self._d, self._obs
        obs[0:7] = 2.0 * (d.qpos[self._qpos_ids] - self._ctrl_low) / self._ctrl_span - 1.0
        obs[7:14] = d.qvel[self._dof_ids] * VELOCITY_SCALE
        obs[14:18] = self.head_pose / _POSE_LIMITS
        obs[18:21] = self._target_in_head
        obs[21] = self.pointing_error
        obs[self._act_slice] = self._prev_action
        self._write_task_obs(obs[self._task_slice])
        return np.minimum(np.maximum(obs, -OBS_BOUND), OBS_BOUND)

    def _info(self, jerk: float, action_rate: float, energy: float) -> dict[str, Any]:
        info = {
            "pointing_error_deg": math.degrees(self.pointing_error),
            "jerk": jerk,
            "action_rate": action_rate,
            "energy": energy,
            "episode_energy": self._episode_energy,
            "ik_scale": self._ik_scale,
            "is_success": self.is_success,
        }
        info.update(self._task_info())
        return info

    def _set_marker(self, position: np.ndarray) -> None:
        """Move the red target sphere (purely visual) to a world position."""
        self._d.mocap_pos[self._mocap] = position

    @property
    def step_count(self) -> int:
        """Control steps taken in this episode."""
        return self._step

    @property
    def control_dt(self) -> float:
        """Seconds per control step (0.02)."""
        return CONTROL_DT
