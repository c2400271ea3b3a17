"""The persisted state machine: allowed moves, refused moves, races, events and timestamps."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flywheel.errors import Conflict
from flywheel.jobs.lifecycle import TRANSITIONS, can_move, move
from flywheel.jobs.models import Job, JobEvent
from flywheel.platform.models import User
from flywheel.store.engine import session_scope
from tests.jobs.conftest import sleep_job


def test_the_allowed_moves_are_exactly_the_documented_lifecycle() -> None:
    assert can_move("queued", "provisioning") and can_move("provisioning", "running")
    assert all(can_move("running", end) for end in ("completed", "failed", "cancelled"))
    assert not can_move("queued", "running") and not can_move("completed", "failed")
    assert all(TRANSITIONS[end] == () for end in ("completed", "failed", "cancelled"))


def test_a_job_walks_the_lifecycle_with_a_timestamp_and_an_event_per_move(
    project: object, session: Session, user: User
) -> None:
    job = sleep_job(session, user)
    move(session, job, "provisioning")
    move(session, job, "running")
    move(session, job, "failed", reason="preempted", message="SIGTERM")
    session.commit()
    assert (job.status, job.reason, job.error) == ("failed", "preempted", "SIGTERM")
    assert job.queued_at <= job.provisioning_at <= job.started_at <= job.finished_at
    moves = session.execute(select(JobEvent.from_status, JobEvent.to_status).where(JobEvent.job_id == job.id)
                            .order_by(JobEvent.id)).all()
    assert [tuple(m) for m in moves] == [("", "queued"), ("queued", "provisioning"),
                                         ("provisioning", "running"), ("running", "failed")]


def test_an_illegal_move_is_a_conflict_and_changes_nothing(project: object, session: Session, user: User) -> None:
    job = sleep_job(session, user)
    with pytest.raises(Conflict, match="queued; it cannot become running"):
        move(session, job, "running")
    move(session, job, "cancelled")
    with pytest.raises(Conflict, match="cancelled; it cannot become provisioning"):
        move(session, job, "provisioning")
    session.commit()
    assert session.scalar(select(Job.status).where(Job.id == job.id)) == "cancelled"


def test_of_two_racing_moves_only_the_first_wins(project: object, session: Session, user: User) -> None:
    job = sleep_job(session, user)
    move(session, job, "provisioning")
    move(session, job, "running")
    session.commit()
    with session_scope() as other:  # another process ends the job; this session still sees it running
        other.execute(update(Job).where(Job.id == job.id).values(status="completed"))
    assert job.status == "running"
    with pytest.raises(Conflict, match="by another process"):
        move(session, job, "failed", reason="dead")
    assert job.status == "completed"


def test_a_worker_of_an_old_attempt_is_fenced_out(project: object, session: Session, user: User) -> None:
    job = sleep_job(session, user)
    move(session, job, "provisioning")
    move(session, job, "queued", message="claimed but never started")
    assert job.attempt == 1
    move(session, job, "provisioning")
    with pytest.raises(Conflict):
        move(session, job, "running", attempt=0)
    move(session, job, "running", attempt=1)
    assert job.status == "running"
