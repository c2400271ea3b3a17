"""Head pose <-> Stewart motor angles for Reachy Mini, through the robot's own analytical IK.

The inverse kinematics is ``reachy_mini_rust_kinematics.ReachyMiniRustKinematics`` (the package Pollen's SDK
uses), built with the geometry in the wheel's ``assets/kinematics_data.json``: one branch per motor with its
``branch_position`` on the platform, the inverse of its ``T_motor_world`` and its solution sign.

A head pose is ``(roll, pitch, yaw, z)``: the rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (extrinsic x-y-z, the
SDK's and scipy's ``"xyz"``) of the head frame (+x forward, +y left, +z up) and its height ``z`` in metres
relative to the neutral pose. Positive pitch looks down, positive yaw looks left, positive roll tilts the head
to its right. MuJoCo's ``head`` site realises the same frame, at ``z + HEAD_Z_OFFSET`` above the ground.

Not every pose inside :data:`HEAD_POSE_LIMITS` is reachable (large pitch with large yaw, roll or z is not);
:meth:`HeadKinematics.project` moves such a pose towards the neutral pose until the IK has a solution that
respects the motors' ranges.

Example:
    >>> kin = HeadKinematics()
    >>> q = kin.motor_angles(0.0, 0.0, np.radians(30), 0.0)
    >>> q.shape, bool(np.isfinite(q).all())
    ((6,), True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from reachy_mini_rust_kinematics import ReachyMiniRustKinematics

from flywheel.envs.reachy.model import HEAD_Z_OFFSET, kinematics_data

#: Symmetric limits of the head-pose action mode: roll/pitch/yaw in radians, z in metres.
HEAD_POSE_LIMITS: dict[str, float] = {
    "roll": math.radians(30.0),
    "pitch": math.radians(45.0),
    "yaw": math.radians(45.0),
    "z": 0.02,
}
#: The eye camera's position in the head frame (m); its optical axis is the head's +x axis.
CAMERA_OFFSET: tuple[float, float, float] = (0.0395, 0.0, 0.0525)
#: Control ranges of the six Stewart motors (rad), as in the MJCF.
STEWART_LOW = np.array(
    [
        -0.8377580409572196,
        -1.396263401595614,
        -0.8377580409572173,
        -1.3962634015953894,
        -1.2217304763962082,
        -1.3962634015954123,
    ]
)
STEWART_HIGH = np.array(
    [
        1.3962634015955222,
        1.2217304763958803,
        1.3962634015955244,
        0.8377580409573525,
        1.396263401595286,
        0.8377580409573296,
    ]
)
_LOW, _HIGH = tuple(STEWART_LOW.tolist()), tuple(STEWART_HIGH.tolist())  # plain floats: fast scalar checks


def rotation_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """``Rz(yaw) @ Ry(pitch) @ Rx(roll)``.

    Example:
        >>> np.round(rotation_matrix(0.0, 0.0, np.pi / 2) @ [1.0, 0.0, 0.0], 6).tolist()
        [0.0, 1.0, 0.0]
    """
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def euler_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """``(roll, pitch, yaw)`` of a rotation matrix (inverse of :func:`rotation_matrix`, pitch in ±90°).

    Example:
        >>> [round(a, 6) for a in euler_from_matrix(rotation_matrix(0.1, -0.2, 0.3))]
        [0.1, -0.2, 0.3]
    """
    pitch = math.asin(max(-1.0, min(1.0, -rot[2, 0])))
    roll = math.atan2(rot[2, 1], rot[2, 2])
    yaw = math.atan2(rot[1, 0], rot[0, 0])
    return roll, pitch, yaw


def look_at_angles(
    target: np.ndarray, head_position: np.ndarray, camera_offset: tuple[float, float, float] = CAMERA_OFFSET
) -> tuple[float, float]:
    """``(pitch, yaw)`` (roll 0) that put a world point on the eye camera's optical axis.

    The camera sits at ``camera_offset`` in the head frame and looks along the head's +x axis, so the head must
    turn so that ``R(pitch, yaw).T @ (target - head_position)`` has y = offset y and z = offset z. With the
    offset's y = 0 that has a closed form: yaw is the target's azimuth, pitch solves
    ``sin(pitch)·ρ + cos(pitch)·dz = offset_z``.

    Args:
        target: world position of the point (m).
        head_position: world position of the head frame's origin (the ``head`` site).
        camera_offset: the camera's position in the head frame.

    Example:
        >>> pitch, yaw = look_at_angles(np.array([0.5, 0.5, 0.177 + 0.0525]), np.array([0.0, 0.0, 0.177]))
        >>> round(math.degrees(yaw), 3), round(math.degrees(pitch), 3)
        (45.0, 0.0)
    """
    v = np.asarray(target, dtype=np.float64) - np.asarray(head_position, dtype=np.float64)
    yaw = math.atan2(v[1], v[0])
    rho = math.hypot(v[0], v[1])
    length = math.hypot(rho, v[2])
    phi = math.atan2(v[2], rho)
    ratio = max(-1.0, min(1.0, camera_offset[2] / max(length, 1e-9)))
    return math.asin(ratio) - phi, yaw


class HeadKinematics:
    """Analytical inverse kinematics of the Stewart head (the 6 motor angles for a head pose).

    Args:
        data: the parsed ``kinematics_data.json``; by default the one in the installed wheel.

    Example:
        >>> kin = HeadKinematics()
        >>> np.round(kin.motor_angles(0.0, 0.0, 0.0, 0.0), 3).tolist()
        [0.627, -0.627, 0.627, -0.627, 0.627, -0.627]
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or kinematics_data()
        self.head_z_offset = float(data.get("head_z_offset", HEAD_Z_OFFSET))
        self._kin = ReachyMiniRustKinematics(float(data["motor_arm_length"]), float(data["rod_length"]))
        for motor in data["motors"]:
            t_world_motor = np.linalg.inv(np.asarray(motor["T_motor_world"], dtype=np.float64))
            sign = 1.0 if motor["solution"] else -1.0
            self._kin.add_branch(list(motor["branch_position"]), t_world_motor.tolist(), sign)

    def _solve(self, roll: float, pitch: float, yaw: float, z: float, body_yaw: float) -> list[float]:
        cr, sr = math.cos(roll), math.sin(roll)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        pose = [  # rotation_matrix(roll, pitch, yaw) and the height, without numpy: this runs every step
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr, 0.0],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr, 0.0],
            [-sp, cp * sr, cp * cr, z + self.head_z_offset],
            [0.0, 0.0, 0.0, 1.0],
        ]
        return self._kin.inverse_kinematics(pose, body_yaw)

    def raw_motor_angles(self, roll: float, pitch: float, yaw: float, z: float, body_yaw: float = 0.0) -> np.ndarray:
        """The IK's answer as is: six angles (rad), NaN where a leg cannot reach the pose."""
        return np.asarray(self._solve(roll, pitch, yaw, z, body_yaw), dtype=np.float64)

    @staticmethod
    def feasible(angles: np.ndarray | list[float]) -> bool:
        """Whether six motor angles are all finite and inside the motors' control ranges."""
        return all(lo <= a <= hi for a, lo, hi in zip(angles, _LOW, _HIGH, strict=True))  # False for NaN

    def motor_angles(self, roll: float, pitch: float, yaw: float, z: float, body_yaw: float = 0.0) -> np.ndarray:
        """Six motor angles for a reachable pose; raises ``ValueError`` if the pose is out of reach.

        Example:
            >>> HeadKinematics().motor_angles(0.0, np.radians(60), np.radians(60), 0.02)
            Traceback (most recent call last):
            ...
            ValueError: head pose out of reach: roll=0.0° pitch=60.0° yaw=60.0° z=0.020 m
        """
        angles = self.raw_motor_angles(roll, pitch, yaw, z, body_yaw)
        if not self.feasible(angles):
            raise ValueError(
                f"head pose out of reach: roll={math.degrees(roll):.1f}° pitch={math.degrees(pitch):.1f}° "
                f"yaw={math.degrees(yaw):.1f}° z={z:.3f} m"
            )
        return angles

    def project(
        self, roll: float, pitch: float, yaw: float, z: float, body_yaw: float = 0.0, iterations: int = 6
    ) -> tuple[np.ndarray, float]:
        """Motor angles for the pose, or for the reachable pose nearest it on the way to the neutral pose.

        The pose is scaled by ``s`` in [0, 1] (``s = 1`` when reachable); ``s`` is found by bisection to
        ``2**-iterations``. The neutral pose (``s = 0``) is always reachable.

        Returns:
            ``(angles, s)``.

        Example:
            >>> angles, s = HeadKinematics().project(0.0, np.radians(45), np.radians(45), 0.02)
            >>> bool(HeadKinematics.feasible(angles)), 0.0 < s < 1.0
            (True, True)
        """
        angles = self._solve(roll, pitch, yaw, z, body_yaw)
        if self.feasible(angles):
            return np.array(angles), 1.0
        lo, hi = 0.0, 1.0
        best = self._solve(0.0, 0.0, 0.0, 0.0, body_yaw)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            trial = self._solve(roll * mid, pitch * mid, yaw * mid, z * mid, body_yaw)
            if self.feasible(trial):
                lo, best = mid, trial
            else:
                hi = mid
        return np.array(best), lo
