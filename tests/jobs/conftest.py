"""Fixtures for the job tests: fast heartbeats, a project, a scheduler in a thread, and process-table checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.jobs.models import Job
from flywheel.jobs.scheduler import Scheduler
from flywheel.jobs.schemas import JobSubmit
from flywheel.jobs.submit import submit
from flywheel.platform.models import Project, User
from flywheel.platform.projects import create_project
from flywheel.platform.schemas import ProjectCreate
from flywheel.store.engine import session_scope

HEARTBEAT_S = 0.5


@pytest.fixture
def jobs_home(flywheel_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose jobs beat every 0.5 s, are dead after 3 s of silence, and are polled every 0.1 s."""
    monkeypatch.setenv("FLYWHEEL_JOB_HEARTBEAT_S", str(HEARTBEAT_S))
    monkeypatch.setenv("FLYWHEEL_JOB_DEAD_AFTER_S", "3")
    monkeypatch.setenv("FLYWHEEL_JOB_POLL_S", "0.1")
    monkeypatch.setenv("FLYWHEEL_JOB_STOP_GRACE_S", "20")
    return flywheel_home


@pytest.fixture
def project(jobs_home: Path, session: Session, user: User) -> Project:
    """A committed project of `user`."""
    created = create_project(session, user, ProjectCreate(name="jobs"))
    session.commit()
    return created


def sleep_job(session: Session, user: User, *, experiment: str = "queue", commit: bool = True,
              **config: Any) -> Job:
    """Submit a sleep job (committed unless told otherwise)."""
    options = {k: config.pop(k) for k in ("gpu_type", "spot", "max_runtime_s") if k in config}
    job = submit(session, user, JobSubmit(kind="sleep", project="jobs", experiment=experiment,
                                          overrides=config, **options))
    if commit:
        session.commit()
    return job


@contextmanager
def running_scheduler(**kwargs: Any) -> Iterator[Scheduler]:
    """A scheduler ticking in a background thread until the block ends."""
    scheduler = Scheduler(**kwargs)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield scheduler
    finally:
        stop.set()
        thread.join(timeout=30)


def wait_for(predicate: Callable[[], Any], timeout: float, *, every: float = 0.1) -> Any:
    """Poll `predicate` until it is truthy (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(every)


def job_state(job_id: str) -> Job:
    """The job as stored now (a fresh session)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def statuses(ids: list[str]) -> dict[str, str]:
    """Job id -> status, fresh from the database."""
    with session_scope() as session:
        rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(ids))).all()
        return {row[0]: row[1] for row in rows}


def children_of(parent: int) -> dict[int, str]:
    """Pid -> state (``R``, ``S``, ``Z`` ...) of every process whose parent is `parent` (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent:
            found[int(entry.name)] = fields[0]
    return found


def describe(pids: Iterable[int]) -> list[str]:
    """``pid (name) state ppid`` of each process, for a failing zombie check's message."""
    out = []
    for pid in pids:
        try:
            out.append(" ".join(Path(f"/proc/{pid}/stat").read_text().split()[:4]))
        except OSError:
            out.append(f"{pid} (gone)")
    return out


def zombies_of(parent: int, *, besides: Iterable[int] = ()) -> list[int]:
    """Pids of zombie processes whose parent is `parent`, except those in `besides`.

    A test that checks it leaves no zombie passes every child it found when it began as `besides`
    (``children_of(os.getpid())``): an earlier test's worker that exits after that test's scheduler
    stopped, whenever it exits, is not this test's.
    """
    skip = set(besides)
    return [pid for pid, state in children_of(parent).items() if state == "Z" and pid not in skip]
