"""The job worker: `python -m flywheel.jobs.worker <job id> --attempt N` runs one job, start to end.

Every runner starts this (the local runner as a process in its own group; Ray as a task). It:

1. moves the job `provisioning → running` for its attempt (if the scheduler gave the job to a newer
   attempt meanwhile, it exits without running anything: a job never runs twice);
2. starts the heartbeat thread; SIGTERM (a spot preemption, a graceful kill) asks the run to stop, which
   makes the template save its checkpoint and return;
3. runs the job's kind (a template for `train`), storing outputs on the iteration;
4. ends the job: `completed`, or `failed`/`cancelled` with the reason (`preempted`, `spend limit`,
   `timeout`, `crashed`), keeping the log and any checkpoint as assets.

Example:
    python -m flywheel.jobs.worker job_0123456789ab --attempt 0
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from sqlalchemy import Engine

from flywheel.errors import Conflict
from flywheel.jobs.ending import end_job, final_state
from flywheel.jobs.heartbeat import Heartbeat
from flywheel.jobs.kinds import Outcome, parse_sleep_config, run_sleep, run_train
from flywheel.jobs.lifecycle import move
from flywheel.jobs.models import Job
from flywheel.platform.models import Iteration, User
from flywheel.settings import get_settings
from flywheel.store.engine import make_engine, session_scope

#: Exit codes.
DONE, NOT_OURS = 0, 3


def run_job(job_id: str, attempt: int) -> int:
    """Run one job to its end in this process; the exit code (0 also when the job failed cleanly)."""
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url())  # the scheduler migrated it; skip Alembic here
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            print(f"job {job_id} does not exist", flush=True)
            return NOT_OURS
        try:
            move(session, job, "running", attempt=attempt,
                 values={"pid": os.getpid(), "pgid": os.getpgid(0)})
        except Conflict as exc:
            print(f"not running job {job_id}: {exc.message}", flush=True)
            return NOT_OURS
        iteration = session.get(Iteration, job.iteration_id) if job.iteration_id else None
        if iteration is not None:
            iteration.status = "running"
        price, kind = job.price_per_hour_usd, job.kind
    print(f"job {job_id} running (attempt {attempt}, pid {os.getpid()}, kind {kind})", flush=True)
    beat = Heartbeat(job_id, attempt=attempt, interval_s=settings.job_heartbeat_s, price_per_hour_usd=price,
                     engine=engine)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: beat.stop("preempted"))
    beat.start()
    outcome: Outcome | None = None
    error = ""
    try:
        outcome = _run(engine, job_id, beat)
    except BaseException as exc:
        traceback.print_exc()
        sys.stdout.flush()
        error = f"{type(exc).__name__}: {exc}"
    finally:
        beat.close()
    if beat.lost:
        print(f"job {job_id} was ended by another process; exiting", flush=True)
        return NOT_OURS
    status, reason = final_state(beat.stop_reason, crashed=bool(error))
    try:
        beat.beat()  # the last step and metrics
    except Exception as exc:
        print(f"last heartbeat failed: {exc}", flush=True)
    if beat.lost:
        print(f"job {job_id} was ended by another process; exiting", flush=True)
        return NOT_OURS
    print(f"job {job_id} {status}{f' ({reason})' if reason else ''} after {beat.elapsed():.1f} s", flush=True)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        try:
            end_job(session, job, status, reason=reason, message=error, attempt=attempt, outcome=outcome)
        except Conflict as exc:
            print(f"job {job_id}: {exc.message}", flush=True)
            session.rollback()
            return NOT_OURS
    engine.dispose()
    return DONE


def _run(engine: Engine, job_id: str, beat: Heartbeat) -> Outcome:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if job.kind == "sleep":
            config = parse_sleep_config(job.config)
            session.close()
            return run_sleep(config, report=beat.report, should_stop=beat.should_stop)
        user = session.get(User, job.owner_id)
        iteration = session.get(Iteration, job.iteration_id) if job.iteration_id else None
        if iteration is None:
            raise RuntimeError(f"the iteration of job {job_id} was deleted")
        return run_train(session, user, job, iteration, report=beat.report, should_stop=beat.should_stop)


def main(argv: list[str] | None = None) -> int:
    """The command line entry."""
    parser = argparse.ArgumentParser(prog="python -m flywheel.jobs.worker", description="Run one queued job.")
    parser.add_argument("job_id")
    parser.add_argument("--attempt", type=int, default=0)
    args = parser.parse_args(argv)
    return run_job(args.job_id, args.attempt)


if __name__ == "__main__":
    sys.exit(main())
