"""Autoresearch controller vs Optuna 5 samplers: simple regret on standard test functions, and ask() latency.

Every (problem, sampler, seed) runs ``--trials`` trials (default 60) in the same run, for Flywheel's
``Controller`` (GP + UCB, its one default configuration) and Optuna's ``RandomSampler``, ``TPESampler`` and
``GPSampler`` (their defaults). Problems: Branin, six-hump camel, Hartmann-3, Hartmann-6, Rosenbrock-4 on
[-2.048, 2.048]⁴, Ackley-5 on [-5, 5]⁵, Levy-4 on [-10, 10]⁴, and a mixed integer/log/float/categorical space
shaped like an RL sweep (n_steer, n_throttle, log learning_rate, gamma, net size), noise-free and with noise
(σ = 5 reward units).

Simple regret after t trials = ``f* − best noise-free value among the first t evaluated points`` (for the
noisy problem the samplers only see noisy values). "Trials to 1%" = first trial whose regret is within 1% of
the gap between the function's median over the domain and its optimum (median over seeds; ``>T`` if the
median run never gets there).

Then ``ask()`` latency with 60 and 300 observations (Hartmann-6), ours vs GPSampler: the median over a
few consecutive ask/tell rounds (our fits are warm-started as in a real search), and our first, cold ask.

Run: ``.venv/bin/python benchmarks/autoresearch_vs_optuna.py [--seeds 20] [--trials 60] [--workers 2]
[--problems branin,hartmann6] [--samplers ours,tpe,gp,random] [--no-latency]``. Prints the ratio line last.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # every process single-threaded, ours and Optuna's alike
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flywheel.autoresearch.controller import Controller
from flywheel.autoresearch.space import SearchSpace

LATENCY_BUDGET_60 = 0.050
LATENCY_BUDGET_300 = 0.5


# ---- test functions (minimised; the controller maximises their negative) -----------------------------------
def branin(x: np.ndarray) -> float:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s


def camel(x: np.ndarray) -> float:
    x1, x2 = x
    return (4 - 2.1 * x1**2 + x1**4 / 3) * x1**2 + x1 * x2 + (-4 + 4 * x2**2) * x2**2


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                  [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(x: np.ndarray) -> float:
    return -float(_H_ALPHA @ np.exp(-(_H3_A * (x - _H3_P) ** 2).sum(1)))


def hartmann6(x: np.ndarray) -> float:
    return -float(_H_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(1)))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def ackley(x: np.ndarray) -> float:
    d = len(x)
    return float(-20 * math.exp(-0.2 * math.sqrt((x**2).sum() / d)) - math.exp(np.cos(2 * math.pi * x).sum() / d)
                 + 20 + math.e)


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    return float(math.sin(math.pi * w[0]) ** 2
                 + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
                 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2))


_NET = {"small": (-2.5, 0.0), "medium": (-3.0, 4.0), "large": (-3.5, 6.0)}


def rl_reward(p: dict[str, Any]) -> float:
    """A synthetic RL-sweep reward (maximised, optimum 106 at large/1e-3.5/0.99/7/3)."""
    centre, bonus = _NET[p["net"]]
    lr_term = math.exp(-((math.log10(p["learning_rate"]) - centre) ** 2) / (2 * 0.5**2))
    gamma_term = math.exp(-((math.log10(1 - p["gamma"]) + 2) ** 2) / (2 * 0.6**2))
    return 100 * lr_term * gamma_term - 2 * (p["n_steer"] - 7) ** 2 - 4 * (p["n_throttle"] - 3) ** 2 + bonus


RL_SPACE = {
    "n_steer": {"type": "int", "low": 3, "high": 11},
    "n_throttle": {"type": "int", "low": 1, "high": 5},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "gamma": {"type": "float", "low": 0.9, "high": 0.9999},
    "net": {"type": "categorical", "choices": ["small", "medium", "large"]},
}


@dataclass(frozen=True)
class Problem:
    """A minimisation problem: ``value(params)`` noise-free, optional observation noise."""

    name: str
    space: dict[str, dict[str, Any]]
    value: Callable[[dict[str, Any]], float]
    optimum: float
    noise: float = 0.0


def _box(f: Callable[[np.ndarray], float], bounds: list[tuple[float, float]]) -> tuple[dict, Callable]:
    space = {f"x{i}": {"type": "float", "low": lo, "high": hi} for i, (lo, hi) in enumerate(bounds)}
    return space, lambda p: f(np.array([p[f"x{i}"] for i in range(len(bounds))]))


def problems() -> dict[str, Problem]:
    """Every benchmark problem by name."""
    out = {}
    for name, f, bounds, opt in [
        ("branin", branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887357729739),
        ("camel", camel, [(-3.0, 3.0), (-2.0, 2.0)], -1.031628453489877),
        ("hartmann3", hartmann3, [(0.0, 1.0)] * 3, -3.86278214782076),
        ("hartmann6", hartmann6, [(0.0, 1.0)] * 6, -3.32236801141551),
        ("rosenbrock4", rosenbrock, [(-2.048, 2.048)] * 4, 0.0),
        ("ackley5", ackley, [(-5.0, 5.0)] * 5, 0.0),
        ("levy4", levy, [(-10.0, 10.0)] * 4, 0.0),
    ]:
        space, value = _box(f, bounds)
        out[name] = Problem(name, space, value, opt)
    out["rl_mixed"] = Problem("rl_mixed", RL_SPACE, lambda p: -rl_reward(p), -106.0)
    out["rl_mixed_noisy"] = Problem("rl_mixed_noisy", RL_SPACE, lambda p: -rl_reward(p), -106.0, noise=5.0)
    return out


def median_gap(problem: Problem, n: int = 20_000) -> float:
    """Median of the function over the domain minus its optimum (random points, fixed seed)."""
    space = SearchSpace(params=problem.space)
    xs = space.sample(np.random.default_rng(12345), n)
    return float(np.median([problem.value(space.decode(x)) for x in xs])) - problem.optimum


# ---- one run ------------------------------------------------------------------------------------------------
def run_ours(problem: Problem, seed: int, trials: int) -> list[float]:
    noise = np.random.default_rng(10_000 + seed)
    ctl = Controller(space=SearchSpace(params=problem.space), seed=seed)
    values = []
    for _ in range(trials):
        t = ctl.ask()
        v = problem.value(t.params)
        values.append(v)
        ctl.tell(t, -(v + problem.noise * noise.standard_normal()))
    return values


def run_optuna(problem: Problem, sampler_name: str, seed: int, trials: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler,
               "gp": optuna.samplers.GPSampler}[sampler_name](seed=seed)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    noise = np.random.default_rng(10_000 + seed)
    values = []
    for _ in range(trials):
        t = study.ask()
        p = {}
        for name, d in problem.space.items():
            if d["type"] == "int":
                p[name] = t.suggest_int(name, d["low"], d["high"], log=d.get("log", False))
            elif d["type"] == "float":
                p[name] = t.suggest_float(name, d["low"], d["high"], log=d.get("log", False))
            else:
                p[name] = t.suggest_categorical(name, d["choices"])
        v = problem.value(p)
        values.append(v)
        study.tell(t, v + problem.noise * noise.standard_normal())
    return values


def one_run(task: tuple[str, str, int, int]) -> tuple[str, str, int, list[float], float]:
    """(problem, sampler, seed, trials) -> the noise-free values in order and the wall time."""
    name, sampler, seed, trials = task
    problem = problems()[name]
    t0 = time.perf_counter()
    values = run_ours(problem, seed, trials) if sampler == "ours" else run_optuna(problem, sampler, seed, trials)
    return name, sampler, seed, values, time.perf_counter() - t0


# ---- latency ------------------------------------------------------------------------------------------------
def latency(n_obs: int, rounds: int = 5) -> dict[str, float]:
    """Median ask() seconds with ``n_obs`` observations on Hartmann-6, ours (warm and cold) and GPSampler."""
    import optuna

    prob = problems()["hartmann6"]
    space = SearchSpace(params=prob.space)
    xs = space.sample(np.random.default_rng(7), n_obs + rounds)
    params = [space.decode(x) for x in xs]
    out: dict[str, float] = {}

    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # the observations reach the controller as prior results
        prior = Path(tmp) / "prior.jsonl"
        prior.write_text("".join(json.dumps({"params": p, "mean_reward": -prob.value(p)}) + "\n"
                                 for p in params[:n_obs]))
        ctl = Controller(space=space, seed=0, prior=[prior])
    t0 = time.perf_counter()
    t = ctl.ask()
    out["ours_cold"] = time.perf_counter() - t0
    ctl.tell(t, -prob.value(t.params))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        t = ctl.ask()
        times.append(time.perf_counter() - t0)
        ctl.tell(t, -prob.value(t.params))
    out["ours"] = float(np.median(times))

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0), direction="minimize")
    dists = {n: optuna.distributions.FloatDistribution(0.0, 1.0) for n in space.names}
    study.add_trials([optuna.trial.create_trial(params=p, distributions=dists, value=prob.value(p))
                      for p in params[:n_obs]])
    times = []
    for _ in range(rounds + 1):
        t0 = time.perf_counter()
        t = study.ask(dists)
        times.append(time.perf_counter() - t0)
        study.tell(t, prob.value(t.params))
    out["gp"] = float(np.median(times[1:]))
    return out


# ---- report -------------------------------------------------------------------------------------------------
def regret_curve(values: list[float], optimum: float) -> np.ndarray:
    return np.minimum.accumulate(np.array(values)) - optimum


def fmt(v: float) -> str:
    return f"{v:.2e}" if v != 0 else "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--problems", default=",".join(problems()))
    parser.add_argument("--samplers", default="ours,tpe,gp,random")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--cache", type=Path, help="JSONL of finished runs: appended to, and reused on a rerun")
    parser.add_argument("--report-only", action="store_true", help="tabulate the cached runs, run nothing")
    args = parser.parse_args()
    names = [n for n in args.problems.split(",") if n]
    samplers = [s for s in args.samplers.split(",") if s]
    unknown = [n for n in names if n not in problems()]
    if unknown:
        parser.error(f"unknown problems {unknown}; allowed: {', '.join(problems())}")

    # seed-major order: a run cut short still has every (problem, sampler) cell with the first seeds
    tasks = [(n, s, seed, args.trials) for seed in range(args.seeds) for n in names for s in samplers]
    results: dict[tuple[str, str], list[np.ndarray]] = {}
    wall: dict[str, float] = {}
    cached: set[tuple[str, str, int, int]] = set()
    if args.cache and args.cache.exists():
        import json

        for line in args.cache.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            task = (row["problem"], row["sampler"], row["seed"], len(row["values"]))
            if task in tasks and task not in cached:
                cached.add(task)
                results.setdefault(task[:2], []).append(regret_curve(row["values"], problems()[task[0]].optimum))
                wall[task[1]] = wall.get(task[1], 0.0) + row["secs"]
    todo = [] if args.report_only else [t for t in tasks if t not in cached]
    print(f"{len(tasks)} runs: {len(cached)} cached, {len(todo)} to run on {args.workers} workers", flush=True)
    t_start = time.perf_counter()
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        for i, (name, sampler, seed, values, secs) in enumerate(pool.imap_unordered(one_run, todo), start=1):
            results.setdefault((name, sampler), []).append(regret_curve(values, problems()[name].optimum))
            wall[sampler] = wall.get(sampler, 0.0) + secs
            if args.cache:
                import json

                with args.cache.open("a") as fh:
                    fh.write(json.dumps({"problem": name, "sampler": sampler, "seed": seed, "values": values,
                                         "secs": secs}) + "\n")
            print(f"  {i}/{len(todo)} runs done ({name} {sampler} seed {seed}: {secs:.1f} s), "
                  f"{time.perf_counter() - t_start:.0f} s", flush=True)
    names = [n for n in names if all((n, s) in results for s in samplers)]
    n_seeds = min((len(results[(n, s)]) for n in names for s in samplers), default=0)

    checkpoints = [c for c in (15, 30, 60) if c <= args.trials] or [args.trials]
    print(f"\nmedian simple regret over {n_seeds}..{args.seeds} seeds per cell (lower is better); "
          "trials to 1% of the median gap")
    header = f"{'problem':<16}{'sampler':<8}" + "".join(f"{'@' + str(c):>11}" for c in checkpoints) + f"{'to 1%':>8}"
    print(header)
    print("-" * len(header))
    wins_tpe = wins_gp = 0
    for name in names:
        gap = median_gap(problems()[name])
        med60: dict[str, float] = {}
        for s in samplers:
            curves = np.array(results[(name, s)][: args.seeds])
            meds = [float(np.median(curves[:, c - 1])) for c in checkpoints]
            hit = [int(np.argmax(c <= 0.01 * gap)) + 1 if (c <= 0.01 * gap).any() else math.inf for c in curves]
            to1 = float(np.median(hit))
            med60[s] = meds[-1]
            to1s = f">{args.trials}" if math.isinf(to1) else f"{to1:.0f}"
            print(f"{name:<16}{s:<8}" + "".join(f"{fmt(m):>11}" for m in meds) + f"{to1s:>8}")
        if "ours" in med60:
            wins_tpe += "tpe" in med60 and med60["ours"] < med60["tpe"]
            wins_gp += "gp" in med60 and med60["ours"] < med60["gp"]
        print()
    print("wall time per sampler (sum over runs): " + ", ".join(f"{s} {wall[s]:.0f} s" for s in samplers))

    lat60 = lat300 = None
    if not args.no_latency:
        lat60, lat300 = latency(60), latency(300)
        for n, lat in ((60, lat60), (300, lat300)):
            print(f"ask() with {n} observations: ours {lat['ours'] * 1e3:.1f} ms (first, cold fit "
                  f"{lat['ours_cold'] * 1e3:.1f} ms), GPSampler {lat['gp'] * 1e3:.1f} ms")
    last = (f"ours beats TPE on {wins_tpe}/{len(names)} problems and GPSampler on {wins_gp}/{len(names)} "
            f"(median regret @{checkpoints[-1]})")
    if lat60 and lat300:
        last += (f"; ask() @60 obs {lat60['ours'] * 1e3:.1f} ms = {lat60['ours'] / LATENCY_BUDGET_60:.2f}x the 50 ms "
                 f"budget ({lat60['gp'] / lat60['ours']:.1f}x faster than GPSampler), "
                 f"@300 {lat300['ours'] * 1e3:.0f} ms = {lat300['ours'] / LATENCY_BUDGET_300:.2f}x the 0.5 s budget")
    print(last)


if __name__ == "__main__":
    main()
