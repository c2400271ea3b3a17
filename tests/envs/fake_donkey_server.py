"""A stand-in for the DonkeyCar simulator: speaks its TCP JSON protocol on 127.0.0.1, drives a ``TrackEnv``.

Behaves like sdsandbox in the parts the client uses: on connect it sends ``scene_selection_ready``;
answers ``get_protocol_version`` (version "2"), ``get_scene_names`` and ``load_scene`` (then ``car_loaded``);
applies ``control`` messages (string fields, as the real simulator parses them) to a ``TrackEnv`` car and
answers each with one ``telemetry`` message (lock-step, so tests are deterministic; the real simulator
streams at 20 Hz); ``reset_car`` puts the car back on the start line; ``exit_scene`` returns to the menu.
Start-line crossings are reported with ``collision_with_starting_line`` like the simulator's lap timer.

Every message received is kept in ``server.received`` for assertions. The server is bounded: one thread,
sockets polled every 0.1 s, and it stops itself after ``max_seconds`` or on ``stop()`` / leaving ``with``.

The camera image is a fixed 160×120 JPEG (a road under a sky; PIL is not installed here).

Example::

    with FakeDonkeyServer() as server:
        env = DonkeySimEnv("generated_road", port=server.port, reset_delay=0.0)
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

from flywheel.envs.track.env import TrackEnv

#: The scene names the server offers, in the order sdsandbox lists them.
SCENES = ["generated_road", "warehouse", "sparkfun_avc", "generated_track", "mountain_track"]
#: Which ``TrackEnv`` track stands in for each scene.
SCENE_TRACKS = {"warehouse": "warehouse", "mountain_track": "mountain"}
#: A 160×120 baseline JPEG, base64-encoded as in telemetry.
JPEG_B64 = (
    "/9j//gAQTGF2YzYyLjI4LjEwMgD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCw"
    "sODg4RERT/3QAEAAr/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsBAAMBAQEBAQEBAQEAAAAAAAABAgMEBQYHCAkKCxAAAgEDAwIE"
    "AwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWm"
    "NkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP0"
    "9fb3+Pn6EQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0"
    "RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY"
    "2dri4+Tl5ufo6ery8/T19vf4+fr/wAARCAB4AKADASIAAhEAAxEA/9oADAMBAAIRAxEAPwDt6KKK9o8cKKKKACiiigAooooAKKKKACiiigAooo"
    "oAKKKKACiiigAooooA/9Dt6KKK9o8cKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooA/9Ht6KKK9o8cKKKKACiiigAooooAKKKK"
    "ACiiigAooooAKKKKACiiigAooooA/9Lt6K5j/hY//UL/APJv/wC5qP8AhY//AFC//Jv/AO5q7f8AWDKf+gj/AMkqf/InjnT0VzH/AAsf/qF/+T"
    "f/ANzUf8LH/wCoX/5N/wD3NR/rBlP/AEEf+SVP/kQOnormP+Fj/wDUL/8AJv8A+5qP+Fj/APUL/wDJv/7mo/1gyn/oI/8AJKn/AMiB09Fcx/ws"
    "f/qF/wDk3/8Ac1H/AAsf/qF/+Tf/ANzUf6wZT/0Ef+SVP/kQOnorl2+JOP8AmF/+Tf8A9zUn/Cy/+oV/5Of/AHLWtPNcDVjzRq3T2fLNfnE0p4"
    "WvVjzRhdd7pfmdTRXLf8LL/wCoV/5Of/ctKvxJz/zC/wDyb/8AuaipmuBpR5pVbJbvlm/yiFTC16UeaULLvdP8jqKK5j/hY/8A1C//ACb/APua"
    "j/hY/wD1C/8Ayb/+5qy/1gyn/oI/8kqf/ImZ09Fcx/wsf/qF/wDk3/8Ac1H/AAsf/qF/+Tf/ANzUf6wZT/0Ef+SVP/kQOnormP8AhY//AFC//J"
    "v/AO5qP+Fj/wDUL/8AJv8A+5qP9YMp/wCgj/ySp/8AIgdPRXMf8LH/AOoX/wCTf/3NR/wsf/qF/wDk3/8Ac1H+sGU/9BH/AJJU/wDkQP/Tx6KK"
    "K8U8YKKKKACiiigApGbHSkZ/Sm12YPL72qVlpuod/wDF/kdeEy+9qlZabqHf/F/kFFFFdux27BRRRRuG49Wz1pajpyv61xYzL7XqUVpu4dv8P+"
    "RxYvL7XqUVpu4dv8P+Q6iiiuM5AooooAKKKKAP/9THooorxTxgoooJApxjKTSim29khxjKTSim29kg6UxmzQWJpK78HgI0bTqWlPoukf8ANndh"
    "MCqVp1LOfRdI/wDBCiiiuk6QooooAKKKKACiiigBVbFP61HShiK5sZgI1rzp2jPqukv8mc2LwKq3nTsp9V0l/wAEfRQCDRXBKMotqSaa3TOGUZ"
    "RbUk01umFFFFIR/9XHoopGbHSvHpUalaajBXf4LzZ5FKlOtNRgrv8ABebBmxTCc0UV6OFwkMNH+ab3l+i8j0cNhIYdfzTe8v0XkFFFFbGoUUUU"
    "AFFFFABRRRQAUUUUAFFFFAADinq2aZRWOKwkMTH+Wa2l+j8jLE4SGIX8s1tL9H5ElFIrZ60tedVo1KM3Gas/wfmjzqtKdGbjNWf4PzR//9bFZ/"
    "Sm0UVnh6FOjTSgrXSbfV+pnh6FOjTSgrXSbfV+oUUUVpY0sFFFFFgsFFFFFgsFFFFFgsFFFFFgsFFFFFgsFFFFFgsFFFFFgsFOV/Wm0VniKFOt"
    "Tamr2TafVehniKFOtTamr2TafVeh/9k="
)
IMAGE_SHAPE = (120, 160, 3)


class FakeDonkeyServer:
    """A one-client-at-a-time fake simulator on an ephemeral port of 127.0.0.1.

    Args:
        scenes: scene names offered by ``get_scene_names``.
        max_seconds: the server stops itself after this long.
        start_in_scene: skip the menu: greet a new client with ``car_loaded`` (as a simulator already
            running a scene does).
    """

    def __init__(self, *, scenes: list[str] | None = None, max_seconds: float = 30.0,
                 start_in_scene: str | None = None) -> None:
        self.scenes = list(scenes or SCENES)
        self.max_seconds = max_seconds
        self.start_in_scene = start_in_scene
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(0.1)
        self.host, self.port = self._listener.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-donkey-sim", daemon=True)
        self.env: TrackEnv | None = None
        self._crossing_due = False
        self._laps = 0

    # -------------------------------------------------------------- lifecycle

    def start(self) -> FakeDonkeyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._listener.close()

    def __enter__(self) -> FakeDonkeyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self, msg_type: str) -> list[dict[str, Any]]:
        """Received messages of one type."""
        return [m for m in self.received if m.get("msg_type") == msg_type]

    # -------------------------------------------------------------- serving

    def _serve(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.1)
                self._session(conn, deadline)

    def _session(self, conn: socket.socket, deadline: float) -> None:
        if self.start_in_scene:
            self._load(conn, self.start_in_scene)
        else:
            self._send(conn, {"msg_type": "scene_selection_ready", "loaded": "1"})
        buffer = b""
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    msg = json.loads(line)
                    self.received.append(msg)
                    if self._handle(conn, msg) == "quit":
                        return

    def _handle(self, conn: socket.socket, msg: dict[str, Any]) -> str | None:
        kind = msg.get("msg_type")
        if kind == "get_protocol_version":
            self._send(conn, {"msg_type": "protocol_version", "version": "2"})
        elif kind == "get_scene_names":
            self._send(conn, {"msg_type": "scene_names", "scene_names": self.scenes})
        elif kind == "load_scene" and msg.get("scene_name") in self.scenes:
            self._load(conn, msg["scene_name"])
        elif kind == "control" and self.env is not None:
            steering, throttle, brake = (float(msg[k]) for k in ("steering", "throttle", "brake"))
            self.env.step([steering, 0.0 if brake > 0 else throttle])
            if self._crossing_due or self.env.lap_count > self._laps:
                self._crossing_due = False
                self._laps = self.env.lap_count
                self._send(conn, {"msg_type": "collision_with_starting_line", "starting_line_index": 0,
                                  "timeStamp": self.env._time})
            self._telemetry(conn, steering, throttle)
        elif kind == "reset_car" and self.env is not None:
            self._reset()
            self._telemetry(conn, 0.0, 0.0)
        elif kind == "exit_scene":
            self.env = None
            self._send(conn, {"msg_type": "scene_selection_ready", "loaded": "1"})
        elif kind == "quit_app":
            return "quit"
        return None

    def _load(self, conn: socket.socket, scene: str) -> None:
        self.env = TrackEnv(track=SCENE_TRACKS.get(scene, "generated-roads"), max_steps=10**9)
        self._reset()
        self._send(conn, {"msg_type": "car_loaded"})
        self._telemetry(conn, 0.0, 0.0)

    def _reset(self) -> None:
        assert self.env is not None
        self.env.reset(seed=0)
        self._crossing_due = True
        self._laps = 0

    def _telemetry(self, conn: socket.socket, steering: float, throttle: float) -> None:
        env = self.env
        assert env is not None
        x, y, yaw = env.car.x, env.car.y, env.car.yaw
        _, _, cte = env.track.nearest(x, y, env._seg)
        self._send(conn, {
            "msg_type": "telemetry", "steering_angle": steering, "throttle": throttle, "speed": env.car.speed,
            "image": JPEG_B64, "hit": "none", "pos_x": x, "pos_y": 0.6, "pos_z": y, "time": env._time,
            "cte": cte, "yaw": yaw,
        })

    def _send(self, conn: socket.socket, msg: dict[str, Any]) -> None:
        self.sent.append(msg)
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps(msg) + "\n").encode())
