"""``TrackEnv``: drive a kinematic-bicycle car around a named track, modelled on the DonkeyCar simulator.

Spaces:
    action: ``Box([-1, 0], [1, 1], (2,), float32)`` = ``(steer, throttle)``. ``steer`` −1 is full right,
    +1 full left (``max_steer`` = 0.45 rad); ``throttle`` 0..1 (there is no reverse; lifting off slows the
    car). Values outside the box are clipped, like the DonkeyCar simulator does.

    observation: ``Box(-inf, inf, (3 + 2·K [+ R],), float32)``, normalised to about [-1, 1]:

    ======  =========================================================================
    index   meaning
    ======  =========================================================================
    0       speed / 10 m/s
    1       heading error / π (car heading minus centre-line heading, wrapped; + = pointing left)
    2       lateral offset (cte) / half road width (+ = left of the centre line)
    3..     K look-ahead centre-line points ``(x, y)`` in the car frame (x forward, y left),
            at ``lookahead`` metres of arc ahead (default 2, 4, 6, 8, 10), divided by the largest
    last R  optional range readings (``n_rays`` > 0): distance to the road edge along R rays fanned over
            ±90° from the heading, divided by ``ray_range`` (1.0 = nothing within range)
    ======  =========================================================================

Reward: metres of progress along the centre line in this step (negative when going backwards). Use
:class:`flywheel.envs.wrappers.SpeedReward` for the DonkeyCar-style ``speed × (1 − |cte|/max_cte)``.

Episode end: ``terminated`` when ``|cte| > max_cte`` (default: half the road width, i.e. off the road)
or after ``max_laps`` laps (if set); ``truncated`` after ``max_steps`` steps (default 2000 = 100 s).

``info`` (every step, like the DonkeyCar simulator): ``cte`` (m), ``speed`` (m/s), ``pos`` (x, y),
``heading_error`` (rad), ``lap_count``, ``lap_time`` (s, the last completed lap; 0.0 before the first),
``progress`` (m since reset), ``time`` (s since reset); on the last step also ``is_success``
(``lap_count ≥ 1``, the Stable-Baselines3 convention).

Hooks used by :mod:`flywheel.envs.wrappers`:
    - ``set_physics(friction=…, mass=…)``: multipliers on the car's friction coefficient and mass.
    - ``set_difficulty(level)`` with ``difficulty_levels`` levels (see ``DIFFICULTY``): top speed
      4, 6, 8 then 10 m/s (the default, hardest); the last level also starts at random places.

Determinism: the only randomness is the start pose (``random_start=True``) and, with
``track_seed=None``, a new generated road per episode; both come from ``reset(seed=…)``.

Example:
    >>> env = TrackEnv(track="mountain")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space.shape
    ((13,), (2,))
    >>> obs, reward, terminated, truncated, info = env.step([0.0, 1.0])
    >>> sorted(k for k in info if k in {"cte", "speed", "lap_time", "lap_count", "pos"})
    ['cte', 'lap_count', 'lap_time', 'pos', 'speed']
"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flywheel.envs.track.car import Car, CarParams
from flywheel.envs.track.tracks import TRACK_NAMES, Track, make_track
from flywheel.errors import InvalidInput

#: Curriculum levels (``set_difficulty``): each overrides some settings; the last is the default.
DIFFICULTY: tuple[dict[str, Any], ...] = (
    {"max_speed": 4.0, "random_start": False},
    {"max_speed": 6.0, "random_start": False},
    {"max_speed": 8.0, "random_start": False},
    {"max_speed": 10.0, "random_start": True},
)
SPEED_SCALE = 10.0
TWO_PI = 2.0 * math.pi


class TrackEnv(gym.Env):
    """A car on a track; see the module docstring for spaces, reward, ``info`` and hooks.

    Args:
        track: a name from ``TRACK_NAMES`` (``generated-roads``, ``mountain``, ``warehouse``).
        track_seed: which generated road (``generated-roads`` only); ``None`` draws a new road every reset.
        random_start: start at a random place (lateral offset up to a quarter of the road, heading ±0.15 rad)
            instead of the start line.
        max_steps: truncate the episode after this many steps.
        max_cte: terminate when ``|cte|`` exceeds this (m); default half the road width.
        max_laps: terminate (successfully) after this many laps; ``None`` = never.
        lookahead: arc distances (m) of the look-ahead points in the observation.
        n_rays: number of range readings appended to the observation (0 = none; slower).
        ray_range: the range readings' maximum distance, m.
        car: physical parameters of the car.
        render_mode: ``None`` or ``"rgb_array"`` (a top-down view).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
    difficulty_levels = len(DIFFICULTY)

    def __init__(
        self,
        track: str = "generated-roads",
        *,
        track_seed: int | None = 0,
        random_start: bool = False,
        max_steps: int = 2000,
        max_cte: float | None = None,
        max_laps: int | None = None,
        lookahead: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0),
        n_rays: int = 0,
        ray_range: float = 15.0,
        car: CarParams | None = None,
        render_mode: str | None = None,
    ) -> None:
        if track not in TRACK_NAMES:
            raise InvalidInput(f"unknown track {track!r}", field="track", allowed=list(TRACK_NAMES))
        if not (isinstance(max_steps, int) and max_steps >= 1):
            raise InvalidInput(f"must be an integer ≥ 1, got {max_steps!r}", field="max_steps", allowed="≥ 1")
        if max_cte is not None and not max_cte > 0:
            raise InvalidInput(f"must be positive, got {max_cte!r}", field="max_cte", allowed="> 0")
        if max_laps is not None and not (isinstance(max_laps, int) and max_laps >= 1):
            raise InvalidInput(f"must be None or an integer ≥ 1, got {max_laps!r}", field="max_laps")
        if not lookahead or any(not d > 0 for d in lookahead):
            raise InvalidInput(f"must be positive distances, got {lookahead!r}", field="lookahead", allowed="> 0")
        if not (isinstance(n_rays, int) and 0 <= n_rays <= 64):
            raise InvalidInput(f"got {n_rays!r}", field="n_rays", allowed="0..64")
        if not ray_range > 0:
            raise InvalidInput(f"must be positive, got {ray_range!r}", field="ray_range", allowed="> 0")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidInput(f"got {render_mode!r}", field="render_mode", allowed=[None, "rgb_array"])
        self.track_name = track
        self.track_seed = track_seed
        self.random_start = bool(random_start)
        self.max_steps = max_steps
        self._max_cte_arg = max_cte
        self.max_laps = max_laps
        self.lookahead = tuple(float(d) for d in lookahead)
        self._look_scale = 1.0 / max(self.lookahead)
        self.n_rays = n_rays
        self.ray_range = float(ray_range)
        self.render_mode = render_mode
        self.base_params = car or CarParams()
        self._physics = {"friction": 1.0, "mass": 1.0}
        self.difficulty: int | None = None
        self.car = Car(self.base_params)
        self.track: Track = make_track(track, seed=track_seed or 0)
        self._set_track(self.track)
        dim = 3 + 2 * len(self.lookahead) + n_rays
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)
        self.action_space = spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 1.0], np.float32),
                                       dtype=np.float32)
        self._background: np.ndarray | None = None
        self._reset_state()

    # ------------------------------------------------------------------ hooks

    def set_physics(self, *, friction: float = 1.0, mass: float = 1.0) -> None:
        """Domain-randomisation hook: scale the car's friction coefficient and mass (1.0 = nominal).

        Takes effect immediately. Example: ``env.unwrapped.set_physics(friction=0.6, mass=1.2)``.
        """
        if not (friction > 0 and mass > 0):
            raise InvalidInput(f"friction={friction}, mass={mass}", field="set_physics", allowed="> 0")
        self._physics = {"friction": float(friction), "mass": float(mass)}
        self._apply_params()

    def set_difficulty(self, level: int) -> None:
        """Curriculum hook: apply ``DIFFICULTY[level]`` (0 = easiest)."""
        if not (isinstance(level, int | np.integer) and 0 <= level < len(DIFFICULTY)):
            raise InvalidInput(f"got {level!r}", field="level", allowed=f"0..{len(DIFFICULTY) - 1}")
        self.difficulty = int(level)
        self.random_start = bool(DIFFICULTY[level]["random_start"])
        self._apply_params()

    def _apply_params(self) -> None:
        params = self.base_params
        if self.difficulty is not None:
            params = replace(params, max_speed=DIFFICULTY[self.difficulty]["max_speed"])
        self.car.set_params(params.scaled(**self._physics))

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode. ``options={"track": name}`` switches track for this and later episodes."""
        super().reset(seed=seed)
        options = options or {}
        name = options.get("track", self.track_name)
        if name not in TRACK_NAMES:
            raise InvalidInput(f"unknown track {name!r}", field="options.track", allowed=list(TRACK_NAMES))
        if name != self.track_name or (self.track_seed is None and name == "generated-roads"):
            self.track_name = name
            road_seed = int(self.np_random.integers(2**31)) if self.track_seed is None else self.track_seed
            self._set_track(make_track(name, seed=road_seed))
        track = self.track
        if self.random_start:
            i = int(self.np_random.integers(track.n))
            offset = float(self.np_random.uniform(-0.25, 0.25)) * track.width / 2
            yaw_noise = float(self.np_random.uniform(-0.15, 0.15))
        else:
            i, offset, yaw_noise = 0, 0.0, 0.0
        x = track.xs[i] - track.ty[i] * offset
        y = track.ys[i] + track.tx[i] * offset
        self.car.reset(x, y, track.heading[i] + yaw_noise, 0.0)
        self._reset_state(i)
        seg, t, cte = track.nearest(x, y, i)
        self._seg = seg
        self._s = track.cum[seg] + t
        obs, he = self._observe(cte)
        return obs, self._info(cte, he)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = action.tolist() if hasattr(action, "tolist") else action
        car = self.car
        car.step(float(a[0]), float(a[1]))
        track = self.track
        seg, t, cte = track.nearest(car.x, car.y, self._seg)
        self._seg = seg
        s = track.cum[seg] + t
        ds = s - self._s
        half = track.length * 0.5
        if ds > half:
            ds -= track.length
        elif ds < -half:
            ds += track.length
        self._s = s
        self._progress += ds
        self._steps += 1
        self._time += car.dt
        if self._progress >= self._next_lap:
            self.lap_count += 1
            self.lap_time = self._time - self._lap_start
            self._lap_start = self._time
            self._next_lap += track.length
        terminated = cte > self.max_cte or cte < -self.max_cte
        if self.max_laps is not None and self.lap_count >= self.max_laps:
            terminated = True
        truncated = self._steps >= self.max_steps
        obs, he = self._observe(cte)
        info = self._info(cte, he)
        if terminated or truncated:
            info["is_success"] = self.lap_count >= 1
        return obs, ds, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """A top-down RGB view (``render_mode="rgb_array"``): grey road, green grass, red car."""
        if self.render_mode != "rgb_array":
            return None
        from flywheel.envs.track.render import draw_car, draw_track

        if self._background is None:
            self._background, self._frame = draw_track(self.track)
        return draw_car(self._background, self._frame, self.car.x, self.car.y, self.car.yaw)

    # ------------------------------------------------------------------ internals

    def _set_track(self, track: Track) -> None:
        self.track = track
        self.max_cte = float(self._max_cte_arg) if self._max_cte_arg is not None else track.width / 2
        self._inv_half_width = 2.0 / track.width
        self._background = None

    def _reset_state(self, seg: int = 0) -> None:
        self._seg = seg
        self._s = 0.0
        self._progress = 0.0
        self._steps = 0
        self._time = 0.0
        self.lap_count = 0
        self.lap_time = 0.0
        self._lap_start = 0.0
        self._next_lap = self.track.length

    def _observe(self, cte: float) -> tuple[np.ndarray, float]:
        track, car = self.track, self.car
        x, y, yaw = car.x, car.y, car.yaw
        seg = self._seg
        he = (yaw - track.heading[seg] + math.pi) % TWO_PI - math.pi
        c, sn = math.cos(yaw), math.sin(yaw)
        out = [car.speed / SPEED_SCALE, he / math.pi, cte * self._inv_half_width]
        cum2, xs, ys, tx, ty, n = track.cum2, track.xs, track.ys, track.tx, track.ty, track.n
        k = self._look_scale
        s = self._s
        for d in self.lookahead:
            target = s + d
            j = bisect.bisect_right(cum2, target, seg) - 1
            u = target - cum2[j]
            j %= n
            dx = xs[j] + tx[j] * u - x
            dy = ys[j] + ty[j] * u - y
            out.append((c * dx + sn * dy) * k)
            out.append((c * dy - sn * dx) * k)
        if self.n_rays:
            from flywheel.envs.track.render import ray_ranges

            out.extend(ray_ranges(track, x, y, yaw, seg, self.n_rays, self.ray_range))
        return np.array(out, dtype=np.float32), he

    def _info(self, cte: float, he: float) -> dict[str, Any]:
        car = self.car
        return {
            "cte": cte,
            "speed": car.speed,
            "pos": (car.x, car.y),
            "heading_error": he,
            "lap_count": self.lap_count,
            "lap_time": self.lap_time,
            "progress": self._progress,
            "time": self._time,
        }
