"""``DonkeySimEnv``: a Gymnasium env driving a car in the DonkeyCar Unity simulator over its TCP protocol.

Registered as ``flywheel/donkey-<scene>-v0`` (``generated-roads``, ``warehouse``, ``mountain-track``, …,
see ``flywheel.envs.DONKEY_SCENES``), with ``host``/``port`` keyword arguments. Start the simulator first
(it listens on port 9091); constructing the env connects, picks the scene from the simulator's own list
and waits for the car (``car_loaded``).

Spaces (as gym-donkeycar):
    action: ``Box([-steer_limit, throttle_min], [steer_limit, throttle_max])`` = ``(steering, throttle)``,
    sent as a ``control`` message (brake 0).
    observation: ``observation="image"``: the car camera, ``Box(0, 255, cam_resolution, uint8)``
    (default (120, 160, 3)); ``observation="vector"``: ``[speed, cte, pos_x, pos_y, pos_z]`` float32.

Reward: ``speed × (1 − |cte| / max_cte)`` while on the road, −1.0 on the step that ends the episode
(gym-donkeycar's default). ``terminated`` when ``|cte| > max_cte`` or the car hits something;
``truncated`` after ``max_steps`` steps if given.

``info``: ``cte``, ``speed``, ``pos`` (x, y, z), ``hit``, ``lap_count``, ``lap_time`` (last lap, s, from the
simulator's start-line crossings; the first crossing starts the clock), ``time`` (simulator clock).

Example (needs the simulator)::

    import gymnasium as gym, flywheel.envs
    env = gym.make("flywheel/donkey-generated-roads-v0", host="127.0.0.1", port=9091)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step([0.0, 0.3])
    env.close()
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flywheel.envs.donkey.client import SimClient
from flywheel.envs.donkey.protocol import DEFAULT_PORT, JpegDecoder, SimulatorUnavailable, control, simple
from flywheel.errors import InvalidInput

OBSERVATIONS = ("image", "vector")


class DonkeySimEnv(gym.Env):
    """A car in the DonkeyCar simulator.

    Args:
        scene: the simulator scene to load (e.g. ``generated_road``, ``mountain_track``, ``warehouse``);
            checked against the list the simulator sends.
        host: simulator host.
        port: simulator port.
        max_cte: cross-track error (simulator units) beyond which the episode ends.
        cam_resolution: (height, width, channels) of the camera images.
        steer_limit: largest absolute steering, in (0, 1].
        throttle_min: smallest throttle, in [-1, 1).
        throttle_max: largest throttle, in (throttle_min, 1].
        frame_skip: repeat each action for this many telemetry frames.
        max_steps: truncate after this many steps (``None`` = never).
        observation: ``"image"`` or ``"vector"``.
        timeout: seconds to wait for any answer from the simulator.
        reset_delay: seconds to let the car settle after ``reset_car`` (gym-donkeycar waits 1 s).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        scene: str = "generated_road",
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        max_cte: float = 8.0,
        cam_resolution: tuple[int, int, int] = (120, 160, 3),
        steer_limit: float = 1.0,
        throttle_min: float = 0.0,
        throttle_max: float = 1.0,
        frame_skip: int = 1,
        max_steps: int | None = None,
        observation: str = "image",
        timeout: float = 10.0,
        reset_delay: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        if not (isinstance(scene, str) and scene):
            raise InvalidInput(f"got {scene!r}", field="scene", allowed="a scene name such as 'generated_road'")
        if not (isinstance(port, int) and 0 < port < 65536):
            raise InvalidInput(f"got {port!r}", field="port", allowed="1..65535")
        if not max_cte > 0:
            raise InvalidInput(f"got {max_cte!r}", field="max_cte", allowed="> 0")
        if len(cam_resolution) != 3 or any(not (isinstance(v, int) and v > 0) for v in cam_resolution):
            raise InvalidInput(f"got {cam_resolution!r}", field="cam_resolution", allowed="(height, width, 3)")
        if not 0 < steer_limit <= 1:
            raise InvalidInput(f"got {steer_limit!r}", field="steer_limit", allowed="(0, 1]")
        if not -1 <= throttle_min < throttle_max <= 1:
            raise InvalidInput(f"got ({throttle_min!r}, {throttle_max!r})", field="throttle_min/throttle_max",
                               allowed="-1 ≤ throttle_min < throttle_max ≤ 1")
        if not (isinstance(frame_skip, int) and frame_skip >= 1):
            raise InvalidInput(f"got {frame_skip!r}", field="frame_skip", allowed="≥ 1")
        if max_steps is not None and not (isinstance(max_steps, int) and max_steps >= 1):
            raise InvalidInput(f"got {max_steps!r}", field="max_steps", allowed="None or ≥ 1")
        if observation not in OBSERVATIONS:
            raise InvalidInput(f"got {observation!r}", field="observation", allowed=list(OBSERVATIONS))
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidInput(f"got {render_mode!r}", field="render_mode", allowed=[None, "rgb_array"])
        self.scene = scene
        self.max_cte = float(max_cte)
        self.cam_resolution = tuple(cam_resolution)
        self.frame_skip = frame_skip
        self.max_steps = max_steps
        self.observation = observation
        self.timeout = float(timeout)
        self.reset_delay = float(reset_delay)
        self.render_mode = render_mode
        self.action_space = spaces.Box(np.array([-steer_limit, throttle_min], np.float32),
                                       np.array([steer_limit, throttle_max], np.float32), dtype=np.float32)
        if observation == "image":
            self.observation_space = spaces.Box(0, 255, self.cam_resolution, dtype=np.uint8)
        else:
            self.observation_space = spaces.Box(-np.inf, np.inf, (5,), dtype=np.float32)
        self._decode = JpegDecoder() if observation == "image" or render_mode else None
        self._image: np.ndarray | None = None
        self.protocol_version: str | None = None
        self._client = SimClient(host, port, timeout=self.timeout)
        try:
            self._load_scene()
        except BaseException:
            self._client.close()
            raise
        self._steps = 0
        self._lap_start: float | None = None
        self.lap_count = 0
        self.lap_time = 0.0

    def _load_scene(self) -> None:
        client = self._client
        first = client.wait_event("scene_selection_ready", "car_loaded", timeout=self.timeout)
        if first["msg_type"] == "car_loaded":
            return  # the simulator is already in a scene with our car
        before = client.counts()
        client.send(simple("get_protocol_version"))
        client.send(simple("get_scene_names"))
        names = client.wait_event("scene_names", after=before, timeout=self.timeout)["scene_names"]
        version = client.events.get("protocol_version")
        self.protocol_version = version.get("version") if version else None
        if self.scene not in names:
            raise InvalidInput(f"the simulator has no scene {self.scene!r}", field="scene", allowed=list(names))
        before = client.counts()
        client.send(simple("load_scene", scene_name=self.scene))
        client.wait_event("car_loaded", after=before, timeout=self.timeout)

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        client = self._client
        before = client.telemetry_count
        client.send(control(0.0, 0.0, brake=1.0))
        client.send(simple("reset_car"))
        if self.reset_delay:
            time.sleep(self.reset_delay)
        # At least two frames: a simulator answering message by message sends one per message sent, and
        # the second is then the first after the reset (a streaming simulator has sent many by now).
        client.wait_telemetry(before + 1, self.timeout)
        telemetry = client.telemetry
        client.take_crossings()
        self._steps = 0
        self._lap_start = None
        self.lap_count = 0
        self.lap_time = 0.0
        return self._observe(telemetry), self._info(telemetry)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        a = np.clip(np.asarray(action, dtype=np.float32), self.action_space.low, self.action_space.high)
        client = self._client
        for _ in range(self.frame_skip):
            count = client.telemetry_count
            client.send(control(float(a[0]), float(a[1])))
            telemetry = client.wait_telemetry(count, self.timeout)
        self._count_laps()
        self._steps += 1
        cte = float(telemetry.get("cte", 0.0))
        speed = float(telemetry.get("speed", 0.0))
        hit = telemetry.get("hit", "none")
        terminated = abs(cte) > self.max_cte or hit != "none"
        truncated = self.max_steps is not None and self._steps >= self.max_steps
        reward = -1.0 if terminated else speed * (1.0 - abs(cte) / self.max_cte)
        return self._observe(telemetry), reward, terminated, truncated, self._info(telemetry)

    def render(self) -> np.ndarray | None:
        """The last camera image (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return None
        return self._image

    def close(self) -> None:
        """Disconnect from the simulator (the simulator keeps running)."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ internals

    def _count_laps(self) -> None:
        for crossing in self._client.take_crossings():
            stamp = float(crossing.get("timeStamp", 0.0))
            if self._lap_start is None:
                self._lap_start = stamp
            else:
                self.lap_count += 1
                self.lap_time = stamp - self._lap_start
                self._lap_start = stamp

    def _observe(self, telemetry: dict[str, Any]) -> np.ndarray:
        if self._decode is not None and "image" in telemetry:
            self._image = self._decode(telemetry["image"])
        if self.observation == "vector":
            return np.array([float(telemetry.get(k, 0.0)) for k in ("speed", "cte", "pos_x", "pos_y", "pos_z")],
                            dtype=np.float32)
        if self._image is None or self._image.shape != self.cam_resolution:
            shape = None if self._image is None else self._image.shape
            raise SimulatorUnavailable(f"the simulator sent an image of shape {shape}, expected "
                                       f"{self.cam_resolution}: pass cam_resolution= to match the simulator camera")
        return self._image

    def _info(self, telemetry: dict[str, Any]) -> dict[str, Any]:
        return {
            "cte": float(telemetry.get("cte", 0.0)),
            "speed": float(telemetry.get("speed", 0.0)),
            "pos": tuple(float(telemetry.get(k, 0.0)) for k in ("pos_x", "pos_y", "pos_z")),
            "hit": telemetry.get("hit", "none"),
            "lap_count": self.lap_count,
            "lap_time": self.lap_time,
            "time": float(telemetry.get("time", math.nan)),
        }
