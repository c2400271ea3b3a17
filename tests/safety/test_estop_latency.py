"""From the API request to the safe action out of a real 50 Hz control loop on ReachyLookAt-v0: within one tick."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import flywheel.envs  # noqa: F401
from flywheel.safety.control import ControlLoop
from flywheel.safety.estop import EstopGuard
from flywheel.safety.limits import SafetyLayer
from flywheel.training.envs import expert_for
from tests.api.conftest import Api

HZ = 50
TICK = 1.0 / HZ


def _wait_for(loop: ControlLoop, t: float, *, latched: bool, timeout: float = 1.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for tick in list(loop.ticks):
            if tick.time >= t and tick.latched == latched:
                return tick
        time.sleep(0.002)
    raise AssertionError(f"no tick with latched={latched} within {timeout} s")


def test_the_safe_action_comes_out_within_one_tick_of_the_request(api: Api) -> None:
    env = gym.make("flywheel/ReachyLookAt-v0", episode_steps=100_000)
    layer = SafetyLayer.from_env(env)
    loop = ControlLoop(env, expert_for(env), hz=HZ, layer=layer, guard=EstopGuard(layer.safe_action, scope="reachy-01"))
    loop.start()
    results = []
    try:
        time.sleep(0.3)  # the head is moving towards its target
        for trial in range(3):
            t0 = time.monotonic()
            api.ok(api.post("/emergency_stop", json={"reason": f"latency trial {trial}", "scope": "reachy-01"}))
            t1 = time.monotonic()
            tick = _wait_for(loop, t0, latched=True)
            results.append((t1 - t0, tick.time - t0, tick.time - t1))
            time.sleep(0.1)
            held = [t for t in list(loop.ticks) if t.time >= tick.time]
            assert all(t.latched for t in held)
            before = next(t for t in list(loop.ticks) if t.index == tick.index - 1)
            assert all(np.allclose(t.action, before.action) for t in held)  # the head holds its last pose
            api.ok(api.post("/emergency_stop/reset", json={"scope": "reachy-01"}))
            _wait_for(loop, time.monotonic(), latched=False)
            time.sleep(0.1)
    finally:
        loop.stop()
    for request, latency, after_return in results:
        print(f"request {request * 1e3:.1f} ms, request -> safe action {latency * 1e3:.1f} ms, "
              f"after the answer {after_return * 1e3:.1f} ms (tick {TICK * 1e3:.0f} ms)")
    assert all(after_return <= TICK for _, _, after_return in results), results
