"""PPO on ``flywheel/Track-v0`` learns to lap its training track and laps another track it never saw.

The claim (issue 4): PPO learns to lap its training track, and the trained policy completes a lap on at least
one other track. The run goes through the ``ppo`` template (the code a Flywheel job runs): it trains on
``--train-track`` (default ``mountain``, the hardest: three hairpins and an S-bend) with random starts, then
evaluates the exported ONNX actor on every track for ``--episodes`` episodes of 100 s (2000 steps) from
random starts, next to the scripted pure-pursuit expert on the same episodes (the anchor, measured in the same
run). Returns are metres of progress along the centre line (the task's own reward).

Why mountain: a policy trained on the smooth generated road drives flat out and crashes at the first hairpin or
90° corner of the other tracks; one trained on the hairpins has learnt to brake, and that carries over.

Run: ``.venv/bin/python benchmarks/ppo_track_laps.py [--steps 250000] [--train-track mountain] [--seed 0]``.
Prints, per track, laps and the return ratio to the expert; last, the ratio on the best unseen track.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from flywheel.envs.track.tracks import TRACK_NAMES
from flywheel.training.base import RunContext
from flywheel.training.evaluation import evaluate
from flywheel.training.onnx_export import onnx_policy
from flywheel.training.templates import TEMPLATES, parse_config

EVAL_STEPS = 2000  # 100 s at 20 Hz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=250_000, help="PPO environment steps")
    parser.add_argument("--train-track", default="mountain", choices=list(TRACK_NAMES))
    parser.add_argument("--episodes", type=int, default=3, help="evaluation episodes per track")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = parse_config("ppo", {
        "env_kwargs": {"track": args.train_track, "random_start": True, "max_steps": 1000},
        "total_timesteps": args.steps, "n_envs": 4, "n_steps": 512, "batch_size": 256, "seed": args.seed,
        "eval_episodes": args.episodes, "eval_every": 50_000,
    })
    workdir = Path(tempfile.mkdtemp(prefix="fw-ppo-laps-"))

    def progress(step: int, metrics: dict[str, float]) -> None:
        if "eval/mean_return" in metrics:
            print(f"  step {step:>7,}: eval return {metrics['eval/mean_return']:7.1f} m, "
                  f"laps {metrics.get('eval/laps', 0.0):.1f}", flush=True)

    print(f"training PPO on {args.train_track} for {args.steps:,} steps (seed {args.seed}) in {workdir}", flush=True)
    start = time.perf_counter()
    result = TEMPLATES["ppo"].run(config, RunContext(workdir, report=progress))
    print(f"trained in {time.perf_counter() - start:.0f} s ({result.env_episodes:,} episodes)", flush=True)

    policy = onnx_policy(result.onnx)
    ratios: dict[str, float] = {}
    laps: dict[str, float] = {}
    print(f"{'track':16s} {'PPO laps':>9s} {'expert laps':>12s} {'PPO return':>11s} {'expert return':>14s} "
          f"{'ratio':>6s}")
    for track in TRACK_NAMES:
        kwargs = {"track": track, "random_start": True, "max_steps": EVAL_STEPS}
        seed = 10_000 + args.seed
        learnt = evaluate(policy, "flywheel/Track-v0", kwargs, episodes=args.episodes, seed=seed, record=False)
        expert = evaluate("expert", "flywheel/Track-v0", kwargs, episodes=args.episodes, seed=seed, record=False)
        ratios[track] = learnt.mean_return / expert.mean_return
        laps[track] = learnt.task_metrics.get("laps", 0.0)
        label = f"{track}{' (train)' if track == args.train_track else ''}"
        print(f"{label:16s} {laps[track]:9.2f} {expert.task_metrics.get('laps', 0.0):12.2f} "
              f"{learnt.mean_return:11.1f} {expert.mean_return:14.1f} {ratios[track]:6.2f}  "
              f"(PPO lapped in {learnt.success_rate:.0%} of episodes)", flush=True)

    others = [t for t in TRACK_NAMES if t != args.train_track]
    best = max(others, key=lambda t: (laps[t], ratios[t]))
    train_ok = "laps" if laps[args.train_track] >= 1 else "does NOT lap"
    other_ok = "laps" if laps[best] >= 1 else "does NOT lap"
    print(f"PPO {train_ok} its training track {args.train_track} ({laps[args.train_track]:.1f} laps / 100 s) and "
          f"{other_ok} the unseen {best} ({laps[best]:.1f} laps / 100 s); "
          f"return ratio to the scripted expert on {best}: {ratios[best]:.2f}x")


if __name__ == "__main__":
    main()
