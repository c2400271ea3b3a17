"""Reachy Mini task speed: env steps/s with random actions, against raw MuJoCo stepping of the same model.

A control step is 10 physics steps of 2 ms. The anchor is the bare physics of one control step:
``mujoco.mj_step(model, data, nstep=10)`` on the same compiled model, driven by the actuator targets that
uniform random actions produce in each action mode (computed before timing: the head-pose targets through the
IK), so the solver sees the same kind of motion (random motor targets make the closed Stewart loops fight, which
costs the solver more than reachable poses), reset to the home pose at the task's episode length. Each env is
run in both action modes for the same number of steps with uniform random actions (episodes reset as they
end, resets included in the time). The sides alternate for a few rounds and medians are reported; the last
line is the slowest env relative to its anchor (1.0 would mean the task adds nothing on top of the physics).

Run: ``.venv/bin/python benchmarks/reachy_speed.py [--steps 2000] [--rounds 3]``. Prints the ratio last.
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np

from flywheel.envs.reachy.gestures import ReachyNodEnv, ReachyShakeEnv
from flywheel.envs.reachy.model import SUBSTEPS, load_model
from flywheel.envs.reachy.tasks import ReachyLookAtEnv, ReachyTrackEnv

TASKS = {"LookAt": ReachyLookAtEnv, "Track": ReachyTrackEnv, "Nod": ReachyNodEnv, "Shake": ReachyShakeEnv}


def random_targets(mode: str, steps: int, seed: int = 0) -> np.ndarray:
    """Actuator targets of uniform random actions, as the env would compute them (IK for ``head_pose``)."""
    env = ReachyLookAtEnv(action_mode=mode)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    targets = np.empty((steps, 7))
    for i in range(steps):
        env._apply_action(rng.uniform(-1, 1, env.action_space.shape))
        targets[i] = env._ctrl
    return targets


def raw_mujoco(targets: np.ndarray, episode_steps: int) -> float:
    """Control steps/s of bare ``mj_step`` (10 substeps) driven by precomputed targets, reset like an episode."""
    model = load_model()
    m, d = model.mj, mujoco.MjData(model.mj)
    d.qpos[:] = model.home_qpos
    ids = model.ctrl_ids
    start = time.perf_counter()
    for i, target in enumerate(targets):
        d.ctrl[ids] = target
        mujoco.mj_step(m, d, nstep=SUBSTEPS)
        if (i + 1) % episode_steps == 0:
            mujoco.mj_resetData(m, d)
            d.qpos[:] = model.home_qpos
    return len(targets) / (time.perf_counter() - start)


def env_speed(cls: type, mode: str, steps: int, seed: int = 0) -> float:
    """Control steps/s of one task with uniform random actions, resets included."""
    env = cls(action_mode=mode)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=seed)
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i])
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="control steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    args = parser.parse_args()
    modes = ("head_pose", "motors")
    targets = {mode: random_targets(mode, args.steps) for mode in modes}
    anchors: dict[str, list[float]] = {f"{name}/{mode}": [] for name in TASKS for mode in modes}
    results: dict[str, list[float]] = {f"{name}/{mode}": [] for name in TASKS for mode in modes}
    for _ in range(args.rounds):
        for key in results:
            name, mode = key.split("/")
            anchors[key].append(raw_mujoco(targets[mode], TASKS[name].default_episode_steps))
            results[key].append(env_speed(TASKS[name], mode, args.steps))
    ratios = {}
    for key, values in results.items():
        value, anchor = float(np.median(values)), float(np.median(anchors[key]))
        ratios[key] = value / anchor
        print(
            f"{'Reachy' + key:24s}: {value:6.0f} env steps/s | raw mj_step x10, same targets and resets: "
            f"{anchor:6.0f}/s | {ratios[key]:.2f}x"
        )
    slowest = min(ratios, key=ratios.get)
    print(f"slowest env vs raw MuJoCo on the same motion (Reachy{slowest}): {ratios[slowest]:.2f}x")


if __name__ == "__main__":
    main()
