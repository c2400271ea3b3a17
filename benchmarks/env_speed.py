"""Environment speed: env.step calls per second with random actions, one core, against a CartPole anchor.

Every env is built with ``gym.make`` (so the standard wrappers are included, as in training) and driven
with pre-drawn random actions from its own action space (seeded), resetting when an episode ends; the
figure is the best of ``--repeats`` timed runs (the machine is shared). The anchor is gymnasium's
``CartPole-v1`` measured the same way in the same run. The process is pinned to one CPU.

The issue's requirement: ``flywheel/Track-v0`` ≥ 20,000 steps/s on one core.

Add a task by appending ``(label, factory)`` to ``BENCHMARKS`` (e.g. the Reachy envs).

Run: ``.venv/bin/python benchmarks/env_speed.py [--steps 50000] [--repeats 3] [--no-donkey]``. Prints the ratio last.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym

import flywheel.envs  # noqa: F401  (registers the flywheel/ ids)
from flywheel.envs.wrappers import DiscretizeAction

REQUIRED = 20_000
ANCHOR = ("CartPole-v1 (anchor)", lambda: gym.make("CartPole-v1"))

#: (label, factory) for every env measured. Append new tasks here.
BENCHMARKS: list[tuple[str, Callable[[], gym.Env]]] = [
    ("flywheel/Track-v0", lambda: gym.make("flywheel/Track-v0")),
    ("flywheel/Track-v0 track=mountain", lambda: gym.make("flywheel/Track-v0", track="mountain")),
    ("flywheel/Track-v0 track=warehouse", lambda: gym.make("flywheel/Track-v0", track="warehouse")),
    ("flywheel/Track-v0 + DiscretizeAction(5, 3)", lambda: DiscretizeAction(gym.make("flywheel/Track-v0"))),
    ("flywheel/Track-v0 n_rays=8", lambda: gym.make("flywheel/Track-v0", n_rays=8)),
]


def steps_per_second(make: Callable[[], gym.Env], steps: int, repeats: int, seed: int = 0) -> float:
    """Best-of-``repeats`` env.step rate with random actions (resets are included in the time)."""
    env = make()
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(min(steps, 10_000))]
    k = len(actions)
    best = 0.0
    for r in range(repeats):
        env.reset(seed=seed + r)
        step = env.step
        t0 = time.perf_counter()
        for i in range(steps):
            _, _, terminated, truncated, _ = step(actions[i % k])
            if terminated or truncated:
                env.reset()
        best = max(best, steps / (time.perf_counter() - t0))
    env.close()
    return best


def donkey_factory() -> tuple[Callable[[], gym.Env], Callable[[], None]] | None:
    """The DonkeyCar client against the test suite's fake simulator (lock-step TCP on 127.0.0.1)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/
    try:
        from tests.envs.fake_donkey_server import FakeDonkeyServer
    except ImportError:
        return None
    server = FakeDonkeyServer(max_seconds=600.0).start()
    make = lambda: gym.make("flywheel/donkey-generated-roads-v0", port=server.port, reset_delay=0.0,  # noqa: E731
                            max_steps=1000)
    return make, server.stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-donkey", action="store_true", help="skip the DonkeyCar client over TCP")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    results: dict[str, float] = {}
    for label, make in [ANCHOR, *BENCHMARKS]:
        results[label] = steps_per_second(make, args.steps, args.repeats)
        print(f"{label:48s} {results[label]:>11,.0f} steps/s  {1e6 / results[label]:8.1f} µs/step", flush=True)
    donkey = None if args.no_donkey else donkey_factory()
    if donkey is not None:
        make, stop = donkey
        try:
            label = "flywheel/donkey-generated-roads-v0 (fake sim, TCP)"
            rate = steps_per_second(make, min(args.steps, 2000), 1)
            print(f"{label:48s} {rate:>11,.0f} steps/s  {1e6 / rate:8.1f} µs/step", flush=True)
        finally:
            stop()
    anchor = results[ANCHOR[0]]
    track = results["flywheel/Track-v0"]
    verdict = "meets" if track >= REQUIRED else "MISSES"
    print(f"Track-v0 {track:,.0f} steps/s on one core ({verdict} the {REQUIRED:,} requirement); "
          f"ratio to CartPole-v1 anchor ({anchor:,.0f} steps/s): {track / anchor:.2f}x")


if __name__ == "__main__":
    main()
