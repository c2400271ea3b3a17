"""Jobs by id, only for their owner (a job of someone else is NotFound, as for every other object)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput, NotFound
from flywheel.jobs.models import STATUSES, Job, JobEvent
from flywheel.platform import access
from flywheel.platform.models import User


def get_job(session: Session, user: User, ident: str) -> Job:
    """The user's job by id."""
    job = session.scalars(select(Job).where(Job.id == ident, Job.owner_id == user.id)).first()
    if job is None:
        raise NotFound("job", ident, hint="`flywheel job list` shows your jobs.")
    return job


def list_jobs(session: Session, user: User, *, status: str | None = None, project: str | None = None,
              experiment: str | None = None, limit: int = 100) -> list[Job]:
    """The user's jobs, newest first, optionally by status, project or experiment."""
    query = select(Job).where(Job.owner_id == user.id)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"unknown status {status!r}", field="status", allowed=list(STATUSES))
        query = query.where(Job.status == status)
    if experiment is not None:
        query = query.where(Job.experiment_id == access.experiment(session, user, experiment).id)
    if project is not None:
        from flywheel.platform.models import Experiment

        prj = access.project(session, user, project)
        query = query.where(Job.experiment_id.in_(select(Experiment.id).where(Experiment.project_id == prj.id)))
    return list(session.scalars(query.order_by(Job.queue_seq.desc(), Job.id).limit(limit)))


def job_events(session: Session, job: Job) -> list[JobEvent]:
    """The job's transitions and notes, oldest first."""
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)))
