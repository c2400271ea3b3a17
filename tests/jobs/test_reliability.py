"""The reliability claims of the jobs issue, on real processes: many jobs, killed workers, a killed scheduler."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.jobs.models import Job, JobEvent
from flywheel.platform.models import User
from flywheel.platform.schemas import UserCreate
from flywheel.platform.users import create_user
from flywheel.store.engine import session_scope
from tests.jobs.conftest import (
    HEARTBEAT_S,
    children_of,
    job_state,
    running_scheduler,
    sleep_job,
    statuses,
    wait_for,
    zombies_of,
)


def _events(job_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    with session_scope() as session:
        rows = session.execute(select(JobEvent.job_id, JobEvent.from_status, JobEvent.to_status)
                               .where(JobEvent.job_id.in_(job_ids)).order_by(JobEvent.id)).all()
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for job_id, before, after in rows:
        found[job_id].append((before, after))
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hundred_trivial_jobs_complete_in_fifo_order_per_user_without_zombies(
    project: object, session: Session, user: User
) -> None:
    other, _ = create_user(session, UserCreate(name="bob"))
    session.commit()
    from flywheel.platform.projects import create_project
    from flywheel.platform.schemas import ProjectCreate

    create_project(session, other, ProjectCreate(name="jobs"))
    session.commit()
    ids: dict[str, list[str]] = {user.id: [], other.id: []}
    for i in range(100):
        owner = user if i % 2 == 0 else other
        ids[owner.id].append(sleep_job(session, owner, seconds=0.0).id)
    everything = ids[user.id] + ids[other.id]
    children_before = children_of(os.getpid())
    started = time.monotonic()
    with running_scheduler(slots=2, per_user=1):
        wait_for(lambda: set(statuses(everything).values()) == {"completed"}, 300, every=0.5)
        elapsed = time.monotonic() - started
        # the scheduler reaps every finished worker
        wait_for(lambda: zombies_of(os.getpid(), besides=children_before) == [], 10)
    with session_scope() as s:
        jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(everything)))}
    for owner_ids in ids.values():  # FIFO per user: started in submission order
        starts = [jobs[i].started_at for i in owner_ids]
        assert starts == sorted(starts)
    events = _events(everything)
    for job_id in everything:  # each ran exactly once
        assert events[job_id] == [("", "queued"), ("queued", "provisioning"), ("provisioning", "running"),
                                  ("running", "completed")]
    assert all(jobs[i].log_asset_id for i in everything)
    print(f"100 jobs in {elapsed:.1f} s")


def test_kill_9_of_a_worker_is_detected_within_two_heartbeats_and_the_next_job_runs(
    project: object, session: Session, user: User
) -> None:
    victim = sleep_job(session, user, seconds=30, steps=300).id
    follower = sleep_job(session, user, seconds=0.0).id
    children_before = children_of(os.getpid())
    with running_scheduler(slots=1):
        running = wait_for(lambda: (j := job_state(victim)).status == "running" and j.heartbeat_at and j, 30)
        os.kill(running.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: job_state(victim).status == "failed", 2 * HEARTBEAT_S, every=0.05)
        assert time.monotonic() - killed_at <= 2 * HEARTBEAT_S
        wait_for(lambda: job_state(follower).status == "completed", 60)
    dead = job_state(victim)
    assert dead.reason == "crashed" and "signal 9" in dead.error
    assert dead.log_asset_id is not None
    with session_scope() as s:
        from flywheel.platform.models import Iteration

        assert s.get(Iteration, dead.iteration_id).status == "failed"
    assert zombies_of(os.getpid(), besides=children_before) == []


def test_a_silent_worker_is_declared_dead_killed_and_failed(project: object, session: Session, user: User) -> None:
    job_id = sleep_job(session, user, seconds=60, steps=600).id
    with running_scheduler(slots=1):
        running = wait_for(lambda: (j := job_state(job_id)).status == "running" and j.heartbeat_at and j, 30)
        os.kill(running.pid, signal.SIGSTOP)  # alive but silent: only the heartbeat can tell
        wait_for(lambda: job_state(job_id).status == "failed", 20)
    dead = job_state(job_id)
    assert dead.reason == "dead" and "no heartbeat" in dead.error
    wait_for(lambda: not Path(f"/proc/{running.pid}").exists() or _state(running.pid) in ("Z", None), 10)


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def _scheduler(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "flywheel.cli", "worker", "--name", "restartable",
                             "--slots", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_kill_9_of_the_scheduler_mid_queue_then_restart_ends_every_job_exactly_once(
    project: object, session: Session, user: User, jobs_home: Path
) -> None:
    ids = [sleep_job(session, user, seconds=1.0, steps=4).id for _ in range(12)]
    children_before = children_of(os.getpid())
    with _adopting_orphans():  # the killed scheduler's workers become ours, to be reaped
        first = _scheduler(jobs_home)
        try:
            wait_for(lambda: list(statuses(ids).values()).count("completed") >= 3, 60)
        finally:
            first.kill()
            first.wait()
        second = _scheduler(jobs_home)
        try:
            wait_for(lambda: all(s in ("completed", "failed", "cancelled") for s in statuses(ids).values()), 90)
        finally:
            second.terminate()
            second.wait(10)
    final = statuses(ids)
    events = _events(ids)
    for job_id in ids:
        runs = [e for e in events[job_id] if e == ("provisioning", "running")]
        ends = [e for e in events[job_id] if e[1] in ("completed", "failed", "cancelled")]
        assert len(runs) <= 1 and len(ends) == 1, events[job_id]
    assert list(final.values()).count("completed") >= 10  # at most the two jobs that were mid-run may fail
    assert zombies_of(os.getpid(), besides=children_before) == []


PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def _adopting_orphans(timeout: float = 30.0) -> Iterator[None]:
    """Adopt the orphans of processes that die inside the block (PR_SET_CHILD_SUBREAPER), then wait for
    each adopted one to exit and reap it, and stop adopting: later tests' zombie checks see none of them."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    before = set(children_of(os.getpid()))
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        deadline = time.monotonic() + timeout
        while (adopted := set(children_of(os.getpid())) - before) and time.monotonic() < deadline:
            for pid in adopted:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        assert not adopted, f"orphans still running {timeout:.0f} s after the test: {sorted(adopted)}"
