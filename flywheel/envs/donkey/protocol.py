"""The DonkeyCar simulator's TCP protocol: JSON objects, one per line (``\\n``-terminated), UTF-8.

The simulator (sdsandbox, Unity) listens on port 9091. Messages, by ``msg_type``:

Simulator → client
    ``scene_selection_ready`` (menu is up) · ``protocol_version`` {``version``} · ``scene_names``
    {``scene_names``: [...]} · ``car_loaded`` (a car is in the scene, telemetry follows) · ``telemetry``
    {``steering_angle``, ``throttle``, ``speed``, ``image`` (base64 JPEG), ``hit`` ("none" or an object
    name), ``pos_x``, ``pos_y``, ``pos_z``, ``time``, ``cte``; newer builds add ``vel_*``, ``gyro_*``,
    ``accel_*``, ``roll``/``pitch``/``yaw``, ``activeNode``...} · ``collision_with_starting_line``
    {``starting_line_index``, ``timeStamp``} · ``need_car_config`` · ``ping`` · ``aborted``.

Client → simulator
    ``get_protocol_version`` · ``get_scene_names`` · ``load_scene`` {``scene_name``} · ``control``
    {``steering``, ``throttle``, ``brake``: numbers *as strings*} · ``reset_car`` · ``exit_scene`` ·
    ``quit_app``.

Telemetry is streamed at about 20 Hz whether or not controls arrive (asynchronous mode).

Example:
    >>> control(0.5, 0.25)
    {'msg_type': 'control', 'steering': '0.5', 'throttle': '0.25', 'brake': '0.0'}
    >>> decoder = LineDecoder()
    >>> decoder.feed(b'{"msg_type": "car_loaded"}\\n{"msg_')
    [{'msg_type': 'car_loaded'}]
    >>> decoder.feed(b'type": "ping"}\\n')
    [{'msg_type': 'ping'}]
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import numpy as np

from flywheel.errors import FlywheelError

#: The port the simulator listens on.
DEFAULT_PORT = 9091
log = logging.getLogger(__name__)


class SimulatorUnavailable(FlywheelError):
    """The simulator cannot be reached, stopped answering, or closed the connection."""

    status_code = 503


def encode(msg: dict[str, Any]) -> bytes:
    """One message as sent on the wire (JSON, then ``\\n``)."""
    return (json.dumps(msg) + "\n").encode("utf-8")


def control(steering: float, throttle: float, brake: float = 0.0) -> dict[str, str]:
    """A ``control`` message; the simulator parses the numbers from strings."""
    return {"msg_type": "control", "steering": str(float(steering)), "throttle": str(float(throttle)),
            "brake": str(float(brake))}


def simple(msg_type: str, **fields: Any) -> dict[str, Any]:
    """Any other message: ``simple("load_scene", scene_name="warehouse")``."""
    return {"msg_type": msg_type, **fields}


class LineDecoder:
    """Split a TCP byte stream into JSON messages at ``\\n``, keeping partial lines between reads."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add received bytes; return the complete messages (malformed lines are logged and skipped)."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        out = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("skipping malformed message from the simulator: %.80r", line)
                continue
            if isinstance(msg, dict) and "msg_type" in msg:
                out.append(msg)
        return out


class JpegDecoder:
    """Decode base64 JPEG telemetry images to RGB uint8 arrays, with PyAV (already a Flywheel dependency)."""

    def __init__(self) -> None:
        import av

        self._av = av
        self._codec = av.CodecContext.create("mjpeg", "r")

    def __call__(self, b64: str) -> np.ndarray:
        packet = self._av.Packet(base64.b64decode(b64))
        frames = self._codec.decode(packet)
        if not frames:
            raise SimulatorUnavailable("the simulator sent an image that does not decode as JPEG")
        return frames[-1].to_ndarray(format="rgb24")
