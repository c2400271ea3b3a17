"""A kinematic bicycle model of a small car, with friction and mass acting on grip and acceleration.

State: rear-axle position ``(x, y)`` in metres, heading ``yaw`` in radians, forward ``speed`` in m/s (never
negative: there is no reverse gear). Each :meth:`Car.step` advances ``dt`` seconds (0.05 s, 20 Hz, the
DonkeyCar simulator's telemetry rate):

- steering angle ``δ = steer · max_steer``, path curvature ``κ = tan(δ) / wheelbase``;
- grip: the lateral acceleration ``v²|κ|`` cannot exceed ``friction · g``; beyond it the car understeers
  (``κ`` is clipped to ``friction · g / v²``);
- drive: ``m · dv/dt = F · throttle − b · v`` with ``F = nominal_mass · max_accel`` and
  ``b = F / max_speed``, so full throttle tends to ``max_speed`` and lifting off slows the car; a heavier
  car responds more slowly both ways. The acceleration is limited to ``friction · g`` (traction).

``friction`` and ``mass`` are the domain-randomisation hook (see :meth:`CarParams.scaled`).

Example:
    >>> car = Car(CarParams())
    >>> for _ in range(20):
    ...     car.step(0.0, 1.0)
    >>> round(car.x, 2), round(car.speed, 2)
    (1.69, 3.32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from flywheel.errors import InvalidInput

G = 9.81


@dataclass(frozen=True)
class CarParams:
    """Physical parameters of the car (SI units).

    Attributes:
        wheelbase: distance between axles, m.
        max_steer: steering angle at ``steer = ±1``, rad.
        max_speed: top speed at full throttle, m/s.
        max_accel: acceleration from standstill at full throttle with the nominal mass, m/s².
        friction: tyre-road friction coefficient μ (1.0 = dry tarmac).
        mass: mass, kg.
        nominal_mass: mass the motor was sized for, kg (``max_accel`` holds at this mass).
        dt: time step, s.
    """

    wheelbase: float = 1.0
    max_steer: float = 0.45
    max_speed: float = 10.0
    max_accel: float = 4.0
    friction: float = 1.0
    mass: float = 3.0
    nominal_mass: float = 3.0
    dt: float = 0.05

    def __post_init__(self) -> None:
        for name in ("wheelbase", "max_steer", "max_speed", "max_accel", "friction", "mass", "nominal_mass", "dt"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidInput(f"must be a positive number, got {value!r}", field=name, allowed="> 0")

    def scaled(self, *, friction: float = 1.0, mass: float = 1.0) -> CarParams:
        """These parameters with friction and mass multiplied by the given factors (1.0 = unchanged).

        Example:
            >>> CarParams().scaled(friction=0.5).friction
            0.5
        """
        return replace(self, friction=self.friction * friction, mass=self.mass * mass)


class Car:
    """The car's state and its update rule. Plain floats throughout: this runs tens of thousands of times a second.

    Args:
        params: physical parameters.
    """

    __slots__ = ("_b", "_f", "_grip", "_inv_l", "_inv_m", "dt", "max_speed", "max_steer", "params", "speed", "x",
                 "y", "yaw")

    def __init__(self, params: CarParams) -> None:
        self.x = self.y = self.yaw = self.speed = 0.0
        self.set_params(params)

    def set_params(self, params: CarParams) -> None:
        """Replace the physical parameters (keeps the state)."""
        self.params = params
        self.dt = params.dt
        self.max_steer = params.max_steer
        self.max_speed = params.max_speed
        self._inv_l = 1.0 / params.wheelbase
        self._inv_m = 1.0 / params.mass
        self._f = params.nominal_mass * params.max_accel
        self._b = self._f / params.max_speed
        self._grip = params.friction * G

    def reset(self, x: float, y: float, yaw: float, speed: float = 0.0) -> None:
        """Place the car."""
        self.x, self.y, self.yaw, self.speed = float(x), float(y), float(yaw), float(speed)

    def step(self, steer: float, throttle: float) -> None:
        """Advance one time step. ``steer`` in [-1, 1] (left positive), ``throttle`` in [0, 1]; both are clipped."""
        steer = -1.0 if steer < -1.0 else (1.0 if steer > 1.0 else steer)
        throttle = 0.0 if throttle < 0.0 else (1.0 if throttle > 1.0 else throttle)
        v = self.speed
        dt = self.dt
        kappa = math.tan(steer * self.max_steer) * self._inv_l
        grip = self._grip
        if v * v * abs(kappa) > grip:  # understeer: the tyres cannot hold this curvature at this speed
            kappa = grip / (v * v) if kappa > 0 else -grip / (v * v)
        yaw = self.yaw
        self.x += v * math.cos(yaw) * dt
        self.y += v * math.sin(yaw) * dt
        self.yaw = yaw + v * kappa * dt
        accel = (self._f * throttle - self._b * v) * self._inv_m
        if accel > grip:
            accel = grip
        elif accel < -grip:
            accel = -grip
        v += accel * dt
        self.speed = 0.0 if v < 0.0 else (self.max_speed if v > self.max_speed else v)
