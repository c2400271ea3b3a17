"""The job state machine, persisted: `queued → provisioning → running → completed | failed | cancelled`.

Like an A/B update (RAUC, Mender), a job may lose its process between any two states; the row always
says which state it was in, and every move is a compare-and-set: `UPDATE … WHERE status = <from>` (and,
for a worker, `AND attempt = <its attempt>`). Of two processes racing to move a job (a worker finishing
while the scheduler declares it dead), exactly one wins; the other gets Conflict and backs off.

A move back to `queued` is allowed only from `provisioning` (the scheduler died between claiming a job
and its worker starting, so nothing ran yet); it bumps the attempt so a late worker cannot run it.

Example:
    >>> can_move("queued", "provisioning"), can_move("completed", "running")
    (True, False)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from flywheel.errors import Conflict
from flywheel.jobs.models import Job, JobEvent
from flywheel.store.base import utcnow

#: state -> the states it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("provisioning", "cancelled"),
    "provisioning": ("running", "queued", "failed", "cancelled"),
    "running": ("completed", "failed", "cancelled"),
    "completed": (),
    "failed": (),
    "cancelled": (),
}

#: state -> the timestamp column it sets.
STAMPS = {"queued": "queued_at", "provisioning": "provisioning_at", "running": "started_at",
          "completed": "finished_at", "failed": "finished_at", "cancelled": "finished_at"}


def can_move(from_status: str, to_status: str) -> bool:
    """Whether the state machine allows `from_status → to_status`."""
    return to_status in TRANSITIONS.get(from_status, ())


def move(
    session: Session,
    job: Job,
    to_status: str,
    *,
    reason: str = "",
    message: str = "",
    attempt: int | None = None,
    values: dict[str, Any] | None = None,
    where: list[Any] | None = None,
    at: datetime | None = None,
) -> Job:
    """Move `job` to `to_status` if nobody moved it first; record the event; flush.

    Args:
        session: the session `job` belongs to (the caller commits).
        job: the job, as last read.
        to_status: the new state.
        reason: why (`preempted`, `spend limit`, `timeout`, `dead`, `crashed`, `cancelled by user`, …).
        message: the error or a note, kept on the job (`error`, for failures) and in the event.
        attempt: fence: move only if the job is still on this attempt (workers pass theirs).
        values: more columns to set in the same statement (pid, costs, outputs).
        where: more conditions the move needs, checked in the same statement (the claim's per-user limit).
        at: the transition time (default now).

    Raises:
        Conflict: the move is not allowed from the state the job is in now, or another process moved
            it first (the job is refreshed so the caller sees the state that won).
    """
    from_status = job.status
    if not can_move(from_status, to_status):
        raise Conflict(
            f"job {job.id} is {from_status}; it cannot become {to_status}",
            hint=f"Allowed from {from_status}: {', '.join(TRANSITIONS.get(from_status, ())) or 'nothing (final)'}.",
        )
    now = at or utcnow()
    changes: dict[str, Any] = {"status": to_status, STAMPS[to_status]: now, "updated_at": now, **(values or {})}
    if reason or to_status in ("completed", "queued"):
        changes["reason"] = reason
    if message and to_status == "failed":
        changes["error"] = message
    if to_status == "queued":
        changes["attempt"] = Job.attempt + 1
    query = update(Job).where(Job.id == job.id, Job.status == from_status)
    if attempt is not None:
        query = query.where(Job.attempt == attempt)
    for condition in where or []:
        query = query.where(condition)
    result = session.execute(query.values(**changes).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(job)
        session.refresh(job)
        raise Conflict(f"job {job.id} was moved to {job.status} by another process before it could become "
                       f"{to_status}")
    session.add(JobEvent(job_id=job.id, at=now, from_status=from_status, to_status=to_status, reason=reason,
                         message=message[:10_000]))
    session.flush()
    session.expire(job)
    session.refresh(job)
    return job


def hold(session: Session, job: Job, stop_reason: str) -> bool:
    """Before killing a job's process: write `stop_reason` on its row if the job is still in the state
    last read; False if another process moved it first.

    The row stays locked until the caller's transaction ends, so whoever sees the killed process exit
    (a scheduler's watch) cannot end the job (as `crashed`) before the killer ends it with its reason.
    """
    result = session.execute(update(Job).where(Job.id == job.id, Job.status == job.status)
                             .values(stop_requested=stop_reason).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def note(session: Session, job: Job, message: str, *, reason: str = "") -> None:
    """Record an event inside a state (a stop request, a heartbeat gap) without moving the job."""
    session.add(JobEvent(job_id=job.id, from_status=job.status, to_status=job.status, reason=reason,
                         message=message[:10_000]))
    session.flush()
