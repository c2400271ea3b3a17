"""Scheduling overhead of the job queue, local and Ray, against the raw cost of what each runner starts.

For each runner, trivial `sleep` jobs (0 s, one step) go through the whole path: `submit` (validation,
cost estimate, the iteration), the scheduler's claim, the runner's start, and the worker process moving
the job to `running` (the moment the job's own process has started and owns the job). Measured:

* **latency**: submit → `running`, one job at a time (median of `--jobs`);
* **throughput**: `--jobs` jobs submitted at once, two slots: jobs completed per second.

Anchors, measured in the same run: for `local`, starting a bare Python process
(`subprocess.run([sys.executable, "-c", "pass"])`); for `ray`, a trivial Ray task round trip
(`ray.get(f.remote())`) on the same local Ray. The scheduler polls every `--poll` seconds (default 0.05;
the production default, FLYWHEEL_JOB_POLL_S=1, adds half a second on average to the latency).

Run: `.venv/bin/python benchmarks/job_scheduling.py [--jobs 10] [--poll 0.05] [--runners local ray]`.
Prints each figure, then last the ratios (median latency ÷ anchor) for each runner.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def python_start_s(rounds: int) -> float:
    """Median seconds to start and finish a bare Python process."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ray_task_s(rounds: int) -> float:
    """Median seconds of a trivial Ray task round trip (after one warm-up)."""
    import ray

    @ray.remote
    def nothing() -> None:
        return None

    ray.get(nothing.remote())
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        ray.get(nothing.remote())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def setup(home: Path) -> None:
    """A fresh home with a user and a project."""
    os.environ["FLYWHEEL_HOME"] = str(home)
    os.environ.pop("FLYWHEEL_DATABASE_URL", None)
    from flywheel.platform.projects import create_project
    from flywheel.platform.schemas import ProjectCreate, UserCreate
    from flywheel.platform.users import create_user
    from flywheel.store.engine import get_engine, session_scope

    get_engine()  # migrate
    with session_scope() as session:
        user, _key = create_user(session, UserCreate(name="bench", spend_limit_usd=1000))
        create_project(session, user, ProjectCreate(name="bench"))


def submit_sleep(runner: str) -> tuple[str, float]:
    """Submit one trivial job; its id and the wall-clock time just before submission."""
    from flywheel.jobs.schemas import JobSubmit
    from flywheel.jobs.submit import submit
    from flywheel.platform.users import get_user
    from flywheel.store.engine import session_scope

    submitted = time.time()
    with session_scope() as session:
        job = submit(session, get_user(session, "bench"), JobSubmit(kind="sleep", project="bench", experiment=runner,
                                                                    overrides={"seconds": 0}, runner=runner))
        return job.id, submitted


def state(job_id: str) -> tuple[str, float | None, float | None]:
    """(status, started, finished) as Unix times."""
    from flywheel.jobs.models import Job
    from flywheel.store.engine import session_scope

    with session_scope() as session:
        job = session.get(Job, job_id)
        return (job.status, job.started_at.timestamp() if job.started_at else None,
                job.finished_at.timestamp() if job.finished_at else None)


def wait_ended(job_ids: list[str], timeout: float = 600) -> list[tuple[str, float | None, float | None]]:
    """Wait until every job has ended; their states."""
    deadline = time.monotonic() + timeout
    while True:
        states = [state(j) for j in job_ids]
        if all(s[0] in ("completed", "failed", "cancelled") for s in states):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still running after {timeout} s: {states}")
        time.sleep(0.02)


def measure(runner: str, jobs: int) -> tuple[float, float]:
    """(median submit → running seconds, jobs per second) for `runner`, with a scheduler thread."""
    from flywheel.jobs.scheduler import Scheduler

    scheduler = Scheduler(name=f"bench-{runner}", runner=runner, slots=2, per_user=2)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_ended([submit_sleep(runner)[0]])  # warm-up (a local Ray starts here)
        latencies = []
        for _ in range(jobs):
            job_id, submitted = submit_sleep(runner)
            status, started, _ = wait_ended([job_id])[0]
            if status != "completed" or started is None:
                raise RuntimeError(f"job {job_id} {status}")
            latencies.append(started - submitted)
        first = time.time()
        batch = [submit_sleep(runner)[0] for _ in range(jobs)]
        states = wait_ended(batch)
        if any(s[0] != "completed" for s in states):
            raise RuntimeError(f"not all jobs completed: {states}")
        rate = jobs / (max(s[2] for s in states if s[2] is not None) - first)
    finally:
        stop.set()
        thread.join(timeout=30)
    return statistics.median(latencies), rate


def main() -> None:
    """Measure and print; the ratios last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10, help="Jobs per measurement.")
    parser.add_argument("--poll", type=float, default=0.05, help="Scheduler poll interval (s).")
    parser.add_argument("--runners", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    args = parser.parse_args()
    os.environ["FLYWHEEL_JOB_POLL_S"] = str(args.poll)
    os.environ["FLYWHEEL_JOB_HEARTBEAT_S"] = "60"
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as tmp:
        setup(Path(tmp) / "home")
        print(f"{args.jobs} trivial jobs per figure, 2 slots, scheduler poll {args.poll} s, {os.cpu_count()} CPUs")
        for runner in args.runners:
            if runner == "local":
                anchor = python_start_s(args.jobs)
                label = "bare Python process start"
            else:
                from flywheel.jobs.runners import get_runner

                get_runner("ray").connect()  # type: ignore[attr-defined]  # a local Ray on 127.0.0.1
                anchor = ray_task_s(args.jobs * 5)
                label = "trivial Ray task round trip"
            latency, rate = measure(runner, args.jobs)
            print(f"[{runner}] anchor, {label}: {anchor * 1000:.1f} ms")
            print(f"[{runner}] submit -> job process running (median): {latency * 1000:.1f} ms")
            print(f"[{runner}] throughput: {rate:.2f} jobs/s (anchor back to back: {1 / anchor:.1f}/s)")
            ratios[runner] = latency / anchor
        if "ray" in args.runners:
            import ray

            ray.shutdown()
    print("ratio, submit -> running over the anchor: "
          + ", ".join(f"{runner} {ratio:.1f}x" for runner, ratio in ratios.items()))


if __name__ == "__main__":
    main()
