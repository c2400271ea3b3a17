"""Emergency-stop latency: from ``POST /api/v1/emergency_stop`` to the safe action out of a 50 Hz control loop.

A real API server (``flywheel serve``, uvicorn, its own process) and a real control loop
(:class:`~flywheel.safety.control.ControlLoop` on ``flywheel/ReachyLookAt-v0`` driven by the scripted expert,
through the safety layer and the :class:`~flywheel.safety.estop.EstopGuard`, in this process) share one
database (SQLite in a temporary home by default; with ``--postgres-url`` a temporary database created on that
server and dropped afterwards). Each trial posts a stop over HTTP,
waits for the first tick whose action is the safe one, then resets. For each trial it records:

- ``request``: the HTTP round trip (the stop is committed before the answer is sent);
- ``latency``: request sent → safe action out of the loop (what an operator experiences);
- ``after answer``: answer received → safe action out (the design bound: at most one control tick).

Run: ``.venv/bin/python benchmarks/estop_latency.py [--trials 50] [--hz 50] [--postgres-url URL]``.
The anchor is the control tick (20 ms at 50 Hz); the last line is the p99 latency over that tick.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--hz", type=float, default=50.0)
    parser.add_argument("--postgres-url", default=None,
                        help="a PostgreSQL server URL: the run uses a temporary database on it (default: SQLite)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fw-estop-bench-"))
    os.environ["FLYWHEEL_HOME"] = str(home)
    os.environ.pop("FLYWHEEL_DATABASE_URL", None)
    os.environ.pop("FLYWHEEL_API_KEY", None)
    temp_db = None
    if args.postgres_url:
        from sqlalchemy import create_engine, text

        temp_db = f"fw_estop_bench_{os.getpid()}"
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {temp_db}"))
        os.environ["FLYWHEEL_DATABASE_URL"] = args.postgres_url.rsplit("/", 1)[0] + f"/{temp_db}"
    try:
        run(args)
    finally:
        if temp_db is not None:
            from flywheel.store.engine import dispose_engines

            dispose_engines()
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {temp_db} WITH (FORCE)"))
            admin.dispose()


def run(args: argparse.Namespace) -> None:
    """Start the server and the loop, run the trials, print the distribution and the ratio."""

    import gymnasium as gym

    import flywheel.envs  # noqa: F401
    from flywheel.platform.schemas import UserCreate
    from flywheel.platform.users import create_user
    from flywheel.safety.control import ControlLoop
    from flywheel.safety.estop import EstopGuard
    from flywheel.safety.limits import SafetyLayer
    from flywheel.store.engine import get_engine, session_scope
    from flywheel.training.envs import expert_for

    get_engine()  # migrate before the server starts
    with session_scope() as session:
        _user, key = create_user(session, UserCreate(name="bench"))

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "flywheel.api.app:create_app", "--factory", "--port", str(port),
         "--log-level", "warning"], env=os.environ.copy())
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {key}"}
    tick = 1.0 / args.hz
    env = gym.make("flywheel/ReachyLookAt-v0", episode_steps=100_000)
    layer = SafetyLayer.from_env(env)
    loop = ControlLoop(env, expert_for(env), hz=args.hz, layer=layer,
                       guard=EstopGuard(layer.safe_action, scope="reachy-01"))
    requests, latencies, after = [], [], []
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for _ in range(100):
                try:
                    client.get("/emergency_stop").raise_for_status()
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            loop.start()
            time.sleep(0.5)
            for trial in range(args.trials):
                time.sleep(np.random.default_rng(trial).uniform(0.05, 0.15))  # land anywhere within a tick
                t0 = time.monotonic()
                body = {"reason": f"trial {trial}", "scope": "reachy-01"}
                client.post("/emergency_stop", json=body).raise_for_status()
                t1 = time.monotonic()
                out = wait_for(loop, t0, latched=True)
                requests.append(t1 - t0)
                latencies.append(out - t0)
                after.append(out - t1)
                client.post("/emergency_stop/reset", json={"scope": "reachy-01"}).raise_for_status()
                wait_for(loop, time.monotonic(), latched=False)
    finally:
        loop.stop()
        server.terminate()
        server.wait(10)

    def line(name: str, values: list[float]) -> str:
        v = np.array(values) * 1e3
        q = np.percentile(v, [0, 50, 90, 99, 100])
        return (f"{name:<26} min {q[0]:6.1f}  p50 {q[1]:6.1f}  p90 {q[2]:6.1f}  p99 {q[3]:6.1f}  "
                f"max {q[4]:6.1f} ms")

    backend = "postgresql" if args.postgres_url else "sqlite"
    print(f"{args.trials} trials, control loop at {args.hz:g} Hz on ReachyLookAt-v0, {backend}, "
          f"{loop.overruns} overrun ticks")
    print(line("request (HTTP round trip)", requests))
    print(line("request -> safe action", latencies))
    print(line("answer -> safe action", after))
    within = np.mean(np.array(after) <= tick)
    print(f"safe action within one tick of the answer: {within:.0%} of trials")
    p99 = float(np.percentile(latencies, 99))
    print(f"ratio p99 latency / control tick ({tick * 1e3:.0f} ms): {p99 / tick:.2f}")


def wait_for(loop: object, t: float, *, latched: bool, timeout: float = 2.0) -> float:
    """The time of the first tick at or after ``t`` with the given latched state."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for tick in list(loop.ticks):  # type: ignore[attr-defined]
            if tick.time >= t and tick.latched == latched:
                return float(tick.time)
        time.sleep(0.001)
    raise RuntimeError(f"no tick with latched={latched} within {timeout} s")


if __name__ == "__main__":
    main()
