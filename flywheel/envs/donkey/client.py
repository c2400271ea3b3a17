"""A TCP client for the DonkeyCar simulator: a reader thread keeps the latest telemetry and every event.

Example (needs a running simulator, or the test server ``tests/envs/fake_donkey_server.py``)::

    client = SimClient("127.0.0.1", 9091)
    client.send(simple("get_scene_names"))
    names = client.wait_event("scene_names", timeout=5.0)["scene_names"]
    client.close()
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import defaultdict
from typing import Any

from flywheel.envs.donkey.protocol import LineDecoder, SimulatorUnavailable, encode


class SimClient:
    """Connects on construction; ``close()`` stops the reader thread and closes the socket.

    Args:
        host: simulator host.
        port: simulator port.
        timeout: seconds to wait for the connection.

    Raises:
        SimulatorUnavailable: the connection failed (the message names ``host:port``).
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.address = f"{host}:{port}"
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
            raise SimulatorUnavailable(
                f"cannot connect to the DonkeyCar simulator at {self.address}: {reason}",
                hint="start the simulator (it listens on port 9091) or pass host=/port= to the env",
            ) from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(0.2)
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._closed = False
        self.error: str | None = None
        #: The latest telemetry message and how many have arrived.
        self.telemetry: dict[str, Any] | None = None
        self.telemetry_count = 0
        #: The latest message of every other type and how many of each arrived.
        self.events: dict[str, dict[str, Any]] = {}
        self.event_counts: dict[str, int] = defaultdict(int)
        #: ``collision_with_starting_line`` messages not yet taken by the env.
        self.crossings: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, name=f"donkey-sim-{self.address}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder = LineDecoder()
        while not self._closed:
            try:
                data = self._sock.recv(1 << 18)
            except TimeoutError:
                continue
            except OSError as exc:
                data, self.error = b"", f"connection error: {exc}"
            if not data:
                with self._cond:
                    self.error = self.error or "the simulator closed the connection"
                    self._cond.notify_all()
                return
            messages = decoder.feed(data)
            with self._cond:
                for msg in messages:
                    kind = msg["msg_type"]
                    if kind == "telemetry":
                        self.telemetry = msg
                        self.telemetry_count += 1
                    else:
                        self.events[kind] = msg
                        self.event_counts[kind] += 1
                        if kind == "collision_with_starting_line":
                            self.crossings.append(msg)
                self._cond.notify_all()

    def send(self, msg: dict[str, Any]) -> None:
        """Send one message (one ``sendall`` per message, so the simulator sees whole JSON objects)."""
        try:
            with self._send_lock:
                self._sock.sendall(encode(msg))
        except OSError as exc:
            raise SimulatorUnavailable(f"cannot send to the DonkeyCar simulator at {self.address}: {exc}") from exc

    def wait_telemetry(self, after: int, timeout: float) -> dict[str, Any]:
        """The first telemetry newer than count ``after`` (waits up to ``timeout`` s)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.telemetry_count > after or self.error is not None, timeout)
            if self.telemetry_count > after:
                return self.telemetry  # type: ignore[return-value]
        raise self._failure("telemetry", timeout, ok)

    def wait_event(self, *kinds: str, after: dict[str, int] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The first message of one of ``kinds`` arriving after the counts in ``after`` (default: ever)."""
        after = after or {}

        def arrived() -> str | None:
            return next((k for k in kinds if self.event_counts[k] > after.get(k, 0)), None)

        with self._cond:
            ok = self._cond.wait_for(lambda: arrived() is not None or self.error is not None, timeout)
            kind = arrived()
            if kind is not None:
                return self.events[kind]
        raise self._failure(" or ".join(kinds), timeout, ok)

    def counts(self) -> dict[str, int]:
        """A snapshot of the per-type message counts, to wait for messages newer than now."""
        with self._cond:
            return dict(self.event_counts)

    def take_crossings(self) -> list[dict[str, Any]]:
        """Remove and return the start-line crossings received so far."""
        with self._cond:
            out, self.crossings = self.crossings, []
            return out

    def _failure(self, what: str, timeout: float, ok: bool) -> SimulatorUnavailable:
        if self.error is not None:
            return SimulatorUnavailable(f"DonkeyCar simulator at {self.address}: {self.error} (waiting for {what})")
        return SimulatorUnavailable(f"no {what} from the DonkeyCar simulator at {self.address} within {timeout} s")

    def close(self) -> None:
        """Stop the reader thread and close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=2.0)
        self._sock.close()
