"""The queue: claim the next job exactly once, FIFO per user, within each user's concurrency limit.

`claim_next` picks, among users with queued jobs (oldest first), the first user under their limit and
claims that user's oldest queued job by moving it `queued → provisioning` with a compare-and-set whose
statement also re-counts the user's active jobs. On PostgreSQL the user's row is locked first
(`SELECT … FOR UPDATE`) and the job is picked with `FOR UPDATE SKIP LOCKED`, so concurrent schedulers
never wait on each other's rows; on SQLite the single conditional UPDATE is atomic by itself (one writer
at a time). Either way a job is claimed once, and a user never has more than their limit running.

A user whose spend has reached their limit gets no new job: their queued jobs are cancelled with the
reason `spend limit` (so nothing sits in the queue forever).

Example:
    >>> job = claim_next(session, scheduler="worker@host", runner="local", per_user=2)  # doctest: +SKIP
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from flywheel.errors import Conflict
from flywheel.jobs import cost
from flywheel.jobs.lifecycle import move
from flywheel.jobs.models import Job
from flywheel.platform.models import Iteration, User

RUNNING = ("provisioning", "running")


def queued_owners(session: Session, runner: str) -> list[str]:
    """Users with queued jobs for `runner`, the one waiting longest first."""
    rows = session.execute(
        select(Job.owner_id, func.min(Job.queue_seq).label("first"))
        .where(Job.status == "queued", Job.runner == runner)
        .group_by(Job.owner_id).order_by("first")
    ).all()
    return [row[0] for row in rows]


def claim_next(session: Session, *, scheduler: str, runner: str, per_user: int) -> Job | None:
    """Claim the next job to run (moved to `provisioning`, `claimed_by` = `scheduler`), or None.

    The caller commits right away: the claim is what makes the job this scheduler's.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    for owner_id in queued_owners(session, runner):
        user_query = select(User).where(User.id == owner_id)
        user = session.scalars(user_query.with_for_update() if postgres else user_query).first()
        if user is None:
            continue
        if cost.limit_reached(session, user):
            cancel_queued_over_limit(session, user)
            continue
        active = session.scalar(select(func.count()).select_from(Job).where(
            Job.owner_id == owner_id, Job.status.in_(RUNNING)))
        if (active or 0) >= per_user:
            continue
        pick = (select(Job).where(Job.owner_id == owner_id, Job.status == "queued", Job.runner == runner)
                .order_by(Job.queue_seq, Job.id).limit(1))
        if postgres:
            pick = pick.with_for_update(skip_locked=True)
        job = session.scalars(pick).first()
        if job is None:
            continue
        other = aliased(Job)
        under_limit = (select(func.count()).select_from(other)
                       .where(other.owner_id == owner_id, other.status.in_(RUNNING))
                       .scalar_subquery() < per_user)
        try:
            return move(session, job, "provisioning", values={"claimed_by": scheduler}, where=[under_limit])
        except Conflict:
            continue  # another scheduler claimed it, or filled the user's slots, first
    return None


def cancel_queued_over_limit(session: Session, user: User) -> list[Job]:
    """Cancel the user's queued jobs because their spend reached the limit; return them."""
    from flywheel.jobs.ending import end_job

    cancelled = []
    spent = cost.live_spend(session, user)
    for job in session.scalars(select(Job).where(Job.owner_id == user.id, Job.status == "queued")):
        try:
            end_job(session, job, "cancelled", reason="spend limit",
                    message=f"spend ${spent:.4f} reached the limit ${user.spend_limit_usd:.2f} before it started")
        except Conflict:
            continue
        cancelled.append(job)
    return cancelled


def requeue(session: Session, job: Job, why: str) -> Job:
    """Put a claimed job that never started back in the queue (a new attempt; a late worker is fenced out)."""
    job = move(session, job, "queued", reason="", message=why, values={"claimed_by": "", "handle": {},
                                                                        "pid": None, "pgid": None})
    iteration = session.get(Iteration, job.iteration_id) if job.iteration_id else None
    if iteration is not None:
        iteration.status = "queued"
    return job
