"""Cancel a job: a queued one is dropped; a provisioning or running one is killed (its whole process
group) and marked `cancelled`. Project deletion with `--force` cancels its jobs through here.

Example:
    >>> cancel_job(session, user, "job_0123456789ab").status  # doctest: +SKIP
    'cancelled'
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from flywheel.errors import Conflict
from flywheel.jobs.access import get_job
from flywheel.jobs.ending import end_job
from flywheel.jobs.lifecycle import hold
from flywheel.jobs.models import ACTIVE_STATUSES, Job
from flywheel.jobs.runners import get_runner
from flywheel.platform.models import User


def cancel_job(session: Session, user: User, ident: str, *, reason: str = "cancelled by user") -> Job:
    """Cancel the user's job now (kill its processes if it runs); the log and spend are settled.

    Raises:
        NotFound: not the user's job. Conflict: the job has already ended.
    """
    return cancel(session, get_job(session, user, ident), reason=reason)


def cancel(session: Session, job: Job, *, reason: str = "cancelled by user") -> Job:
    """Cancel `job` (already authorised): kill what runs, then end it as `cancelled` with `reason`.

    The job's row is written (locked) before anything is killed and stays locked until the caller
    commits: a scheduler that sees the killed process exit cannot fail the job as `crashed` first.
    """
    for _ in range(3):  # the job may move (provisioning → running) while we cancel it
        if job.status not in ACTIVE_STATUSES:
            raise Conflict(f"job {job.id} is already {job.status}",
                           hint="Only queued or running jobs can be cancelled.")
        if not hold(session, job, reason):
            session.refresh(job)
            continue
        if job.handle:
            runner = get_runner(job.runner)
            runner.kill(job.handle)
            runner.release(job.handle)
        return end_job(session, job, "cancelled", reason=reason)
    raise Conflict(f"job {job.id} kept changing state; try again")
