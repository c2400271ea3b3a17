"""Platform overhead: the same PPO run through `flywheel train` vs bare Stable-Baselines3, same process, same steps.

The claim (issue 4): a PPO run through Flywheel's runner (config validation, the iteration, the metrics
callback and TensorBoard logging, saving model.zip, the ONNX export, one evaluation episode, uploading the
outputs as assets and the eval dataset) reaches at least 0.95x the environment steps per second of bare SB3
doing only `PPO(...).learn(N)` with the same hyperparameters on the same task. Both are timed end to end
(wall clock) in pairs, `--rounds` pairs, the order inside a pair alternating so neither side always runs
first; each pair gives a ratio, and the median of the pair ratios is the figure (a pair shares the
machine's load of the moment, so the ratio of a pair is far steadier than either side's speed on a shared
machine). The best round of each side is printed too, and the same ratio in steps per CPU second of this
process (all its threads: TensorBoard's writer included). On the 2-core shared machine this was written on,
pair ratios range over about ±15% in CPU time as much as in wall time (the cores' speed itself varies), so
a single run's median moves by several percent; pool runs before reading a 5% difference.

Run: `.venv/bin/python benchmarks/train_overhead.py [--steps 100000] [--rounds 8]`.
Prints each pair, then last the ratio (Flywheel steps/s ÷ bare SB3 steps/s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch

PPO_SETTINGS = {"n_envs": 4, "n_steps": 512, "batch_size": 256, "n_epochs": 10, "learning_rate": 3e-4}
ENV_KWARGS = {"max_steps": 1000}


def bare_sb3(steps: int, seed: int) -> tuple[float, float]:
    """Wall and CPU seconds for bare SB3 PPO on Track-v0 with the template's hyperparameters."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    import flywheel.envs  # noqa: F401  (registers flywheel/Track-v0)

    start = _clocks()
    venv = make_vec_env(lambda: gym.make("flywheel/Track-v0", **ENV_KWARGS), n_envs=PPO_SETTINGS["n_envs"],
                        seed=seed)
    model = PPO("MlpPolicy", venv, n_steps=PPO_SETTINGS["n_steps"], batch_size=PPO_SETTINGS["batch_size"],
                n_epochs=PPO_SETTINGS["n_epochs"], learning_rate=PPO_SETTINGS["learning_rate"],
                policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=steps)
    return _since(start)


def through_flywheel(steps: int, seed: int, home: Path) -> tuple[float, float]:
    """Wall and CPU seconds for `flywheel train --template ppo` (in-process runner) with the same settings."""
    from flywheel.errors import NotFound
    from flywheel.platform.projects import create_project
    from flywheel.platform.schemas import ProjectCreate, UserCreate
    from flywheel.platform.users import create_user, get_user
    from flywheel.store.engine import session_scope
    from flywheel.training.runner import TrainRequest, train

    os.environ["FLYWHEEL_HOME"] = str(home)
    os.environ.pop("FLYWHEEL_DATABASE_URL", None)
    with session_scope() as session:
        try:
            user = get_user(session, "bench")
        except NotFound:  # first round: make the user and project
            user, _ = create_user(session, UserCreate(name="bench"))
            create_project(session, user, ProjectCreate(name="bench"))
    overrides = {**PPO_SETTINGS, "total_timesteps": steps, "seed": seed, "eval_episodes": 1, "env_kwargs": ENV_KWARGS}
    start = _clocks()
    with session_scope() as session:
        user = get_user(session, "bench")
        train(session, user, TrainRequest(template="ppo", project="bench", experiment="overhead", overrides=overrides))
    return _since(start)


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) since ``start``."""
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=8, help="timed pairs (bare SB3, flywheel train)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch's one-time lazy imports before timing
    home = Path(tempfile.mkdtemp(prefix="fw-overhead-"))
    bare, flywheel, ratios, cpu_ratios = [], [], [], []
    for round_ in range(args.rounds):
        order = ("bare", "flywheel") if round_ % 2 == 0 else ("flywheel", "bare")
        wall, cpu = {}, {}
        for side in order:
            wall[side], cpu[side] = (bare_sb3(args.steps, seed=round_) if side == "bare"
                                     else through_flywheel(args.steps, seed=round_, home=home))
        bare.append(args.steps / wall["bare"])
        flywheel.append(args.steps / wall["flywheel"])
        ratios.append(flywheel[-1] / bare[-1])
        cpu_ratios.append(cpu["bare"] / cpu["flywheel"])
        print(f"pair {round_}: bare SB3 {bare[-1]:8.0f} steps/s   flywheel train {flywheel[-1]:8.0f} steps/s"
              f"   ratio {ratios[-1]:.3f} (per CPU second: {cpu_ratios[-1]:.3f})")
    print(f"median: bare SB3 {statistics.median(bare):.0f} steps/s, flywheel train {statistics.median(flywheel):.0f}"
          f" steps/s ({args.steps} steps, PPO, Track-v0)")
    print(f"best round: bare SB3 {max(bare):.0f} steps/s, flywheel train {max(flywheel):.0f} steps/s"
          f" (ratio {max(flywheel) / max(bare):.3f})")
    print(f"steps per CPU second of this process (every thread), median of pair ratios: "
          f"{statistics.median(cpu_ratios):.3f}x (other processes' load does not enter it, the core's speed does)")
    print(f"flywheel train / bare SB3 steps per second (median of {args.rounds} pair ratios): "
          f"{statistics.median(ratios):.3f}x (floor 0.95x)")

if __name__ == "__main__":
    main()
