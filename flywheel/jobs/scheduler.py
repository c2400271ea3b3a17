"""The scheduler (`flywheel worker`): takes jobs from the queue, starts them, watches them, ends the dead.

Each tick it:

1. **watches** the jobs it claimed: a worker process that is gone while its job is still active crashed
   (OOM, kill -9, a segfault): the job fails (`crashed`, with the exit code or signal) and its log is kept;
   a job claimed but never started (the scheduler died in between) goes back to the queue;
2. **sweeps** every running job, whoever claimed it: no heartbeat for `FLYWHEEL_JOB_DEAD_AFTER_S` → killed
   and failed `dead`; over its time limit → asked to stop (`timeout`), killed after the grace period; a
   stop request (spend limit) not honoured within the grace period → killed; the backstop kills anything
   claimed or running with no heartbeat for `FLYWHEEL_JOB_BACKSTOP_S` (24 h);
3. **fills** its free slots: claims jobs (FIFO per user, per-user limit, see :mod:`flywheel.jobs.queue`)
   and starts them with its runner.

All its state is in the database (and the processes), so it may be killed at any moment and restarted:
the next tick of the new scheduler (same name) adopts the running jobs, requeues the claimed-but-unstarted
ones, and fails the ones whose process vanished. No job is lost; none runs twice (the worker's move to
`running` is fenced by the attempt).

Example:
    >>> Scheduler(name="doc", slots=2).slots  # doctest: +SKIP
    2
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flywheel.errors import Conflict
from flywheel.jobs.ending import STOP_STATES, end_job
from flywheel.jobs.lifecycle import hold, note
from flywheel.jobs.models import Job, JobEvent
from flywheel.jobs.queue import RUNNING, claim_next, requeue
from flywheel.jobs.runners import Handle, get_runner
from flywheel.settings import get_settings
from flywheel.store.base import utcnow
from flywheel.store.engine import session_scope


def presence_path() -> Path:
    """The file a running scheduler refreshes every tick (so `flywheel train` knows one is running)."""
    return get_settings().home.absolute() / "jobs" / "scheduler.json"


def scheduler_running(max_age_s: float | None = None) -> bool:
    """Whether a scheduler refreshed its presence file recently (and, on this host, its process lives)."""
    try:
        info = json.loads(presence_path().read_text())
    except (OSError, ValueError):
        return False
    age = time.time() - float(info.get("seen_at", 0))
    limit = max_age_s if max_age_s is not None else max(10.0, 5 * float(info.get("poll_s", 1.0)))
    if age > limit:
        return False
    if info.get("host") == socket.gethostname():
        try:
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError):
            return False
    return True


class Scheduler:
    """One scheduler process (or thread): a name (stable across restarts), a runner, and a number of slots."""

    def __init__(self, *, name: str | None = None, runner: str = "local", slots: int | None = None,
                 per_user: int | None = None) -> None:
        settings = get_settings()
        self.name = name or f"worker@{socket.gethostname()}"
        self.runner = get_runner(runner)
        self.slots = slots or settings.job_slots
        self.per_user = per_user or settings.jobs_per_user
        self.settings = settings

    # --- the loop --------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, *, max_seconds: float | None = None) -> None:
        """Tick until `stop` is set (or `max_seconds` pass). Running jobs keep running after it returns."""
        stop = stop or threading.Event()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                self.tick()
            except Exception as exc:  # a database hiccup: log, retry next tick
                print(f"scheduler tick failed: {type(exc).__name__}: {exc}", flush=True)
            stop.wait(self.settings.job_poll_s)

    def tick(self) -> list[str]:
        """One round: watch, sweep, fill. Returns the ids of the jobs it started."""
        self.runner.reap()
        self.watch()
        self.sweep()
        started = self.fill()
        self._present()
        return started

    # --- 1. my jobs -----------------------------------------------------------------------------------

    def watch(self) -> None:
        """End my jobs whose process is gone; requeue my claimed jobs that never started."""
        now = utcnow()
        with session_scope() as session:
            mine = session.scalars(select(Job).where(
                Job.status.in_(RUNNING), Job.claimed_by == self.name, Job.runner == self.runner.name)).all()
            for job in mine:
                handle = _handle(job)
                if handle is None:
                    if job.status == "provisioning" and _age(now, job.provisioning_at) > self.settings.job_dead_after_s:
                        _quietly(session, lambda j=job: requeue(session, j, "claimed but never started"))
                    continue
                exit_ = self.runner.poll(handle)
                if exit_ is None:
                    continue
                session.refresh(job)
                if job.status not in RUNNING:
                    continue
                before = "before the job started" if job.status == "provisioning" else "without finishing the job"
                reason = "crashed" if (exit_.code is not None or exit_.signal is not None) else "dead"
                hint = " (out of memory?)" if exit_.signal == 9 else ""
                _quietly(session, lambda j=job, r=reason, m=f"the worker process ended {before}: "
                         f"{exit_.describe()}{hint}": end_job(session, j, "failed", reason=r, message=m))
                self.runner.release(handle)

    # --- 2. everyone's running jobs ---------------------------------------------------------------------

    def sweep(self) -> None:
        """Dead jobs, time limits, unanswered stop requests, and the backstop."""
        settings = self.settings
        now = utcnow()
        with session_scope() as session:
            for job in session.scalars(select(Job).where(Job.status.in_(RUNNING))).all():
                silent = _age(now, job.heartbeat_at or job.started_at or job.provisioning_at)
                running_for = _age(now, job.started_at) if job.started_at else 0.0
                if job.status == "running" and silent > settings.job_dead_after_s:
                    self._kill(session, job, "failed", "dead", f"no heartbeat for {silent:.0f} s")
                elif silent > settings.job_backstop_s:
                    self._kill(session, job, "failed", "dead", f"backstop: no heartbeat for {silent:.0f} s")
                elif job.status == "running" and running_for > job.max_runtime_s:
                    if job.stop_requested != "timeout":
                        job.stop_requested = "timeout"
                        note(session, job, f"over its time limit of {job.max_runtime_s:.0f} s: stopping",
                             reason="timeout")
                    elif running_for > job.max_runtime_s + settings.job_stop_grace_s:
                        self._kill(session, job, "failed", "timeout",
                                   f"killed: still running {settings.job_stop_grace_s:.0f} s after its time limit")
                elif job.status == "running" and job.stop_requested:
                    asked = session.scalar(select(func.max(JobEvent.at)).where(
                        JobEvent.job_id == job.id, JobEvent.reason == job.stop_requested))
                    if asked is not None and _age(now, asked) > settings.job_stop_grace_s:
                        self._kill(session, job, STOP_STATES.get(job.stop_requested, "cancelled"),
                                   job.stop_requested, "killed: did not stop within the grace period")

    def _kill(self, session: Session, job: Job, status: str, reason: str, message: str) -> None:
        if not hold(session, job, reason):
            return  # it ended (or moved) meanwhile
        handle = _handle(job)
        if handle is not None:
            runner = get_runner(job.runner)
            runner.kill(handle)
            runner.release(handle)
        _quietly(session, lambda: end_job(session, job, status, reason=reason, message=message))

    # --- 3. new jobs ------------------------------------------------------------------------------------

    def fill(self) -> list[str]:
        """Claim and start jobs while I have free slots."""
        started: list[str] = []
        while True:
            with session_scope() as session:
                busy = session.scalar(select(func.count()).select_from(Job).where(
                    Job.status.in_(RUNNING), Job.claimed_by == self.name, Job.runner == self.runner.name)) or 0
                if busy >= self.slots:
                    return started
                job = claim_next(session, scheduler=self.name, runner=self.runner.name, per_user=self.per_user)
                if job is None:
                    return started
            try:
                handle = self.runner.start(job, log_path=Path(job.log_path))
            except Exception as exc:  # the runner could not start it (Ray down, no capacity)
                with session_scope() as session:
                    fresh = session.get(Job, job.id)
                    _quietly(session, lambda f=fresh, e=exc: end_job(
                        session, f, "failed", reason="provisioning failed", message=f"{type(e).__name__}: {e}"))
                continue
            with session_scope() as session:
                session.execute(update(Job).where(Job.id == job.id, Job.attempt == job.attempt).values(
                    handle=handle, pid=func.coalesce(Job.pid, handle.get("pid")),
                    pgid=func.coalesce(Job.pgid, handle.get("pgid"))).execution_options(synchronize_session=False))
            started.append(job.id)

    def _present(self) -> None:
        path = presence_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
                                   "runner": self.runner.name, "slots": self.slots, "seen_at": time.time(),
                                   "poll_s": self.settings.job_poll_s}))
        tmp.replace(path)


def _handle(job: Job) -> Handle | None:
    if job.handle:
        return dict(job.handle)
    if job.pid:
        return {"pid": job.pid, "pgid": job.pgid or job.pid}
    return None


def _age(now: datetime, then: datetime | None) -> float:
    return (now - then).total_seconds() if then is not None else 0.0


def _quietly(session: Session, action: Any) -> None:
    """Run a move that may lose a race (the worker finished meanwhile): losing is fine."""
    with contextlib.suppress(Conflict):
        action()
