"""Jobs under `/api/v1/jobs`: submit, list, show, cancel, follow the logs (Server-Sent Events), reconcile.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1; J='Content-Type: application/json'
    curl -H "$H" -H "$J" -X POST $API/jobs -d '{"template": "ppo", "project": "drive", "experiment": "baseline",
         "overrides": {"total_timesteps": 20000}}'
    curl -H "$H" "$API/jobs?status=running"
    curl -H "$H" $API/jobs/job_…
    curl -N -H "$H" "$API/jobs/job_…/logs?follow=true"      # text/event-stream until the job ends
    curl -H "$H" -X POST $API/jobs/job_…/cancel
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.params import IDENT_MAX, IDENT_PATTERN, ident_path, ident_query
from flywheel.jobs import access, cost
from flywheel.jobs.cancel import cancel_job
from flywheel.jobs.logs import follow, log_path
from flywheel.jobs.models import TERMINAL_STATUSES, Job
from flywheel.jobs.schemas import JobDetail, JobEventPublic, JobPublic, JobSubmit
from flywheel.jobs.submit import submit
from flywheel.store.engine import get_engine, session_scope

router = APIRouter(tags=["jobs"])

JobId = Annotated[str, ident_path("The job's id (`job_…`).")]


class BilledAmount(BaseModel):
    """What the provider billed for one job."""

    job_id: str = Field(min_length=1, max_length=IDENT_MAX, pattern=IDENT_PATTERN)
    billed_usd: float = Field(ge=0, le=1e9)


class ReconciliationPublic(BaseModel):
    """A recorded difference between billed and recorded cost."""

    job_id: str
    billed_usd: float
    recorded_usd: float
    difference_usd: float


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
def submit_job(session: SessionDep, user: CurrentUser, body: JobSubmit) -> JobPublic:
    """Validate and queue a job (refused, with nothing queued, if anything is wrong or over the spend limit)."""
    return JobPublic.model_validate(submit(session, user, body))


@router.get("/jobs")
def list_jobs(
    session: SessionDep,
    user: CurrentUser,
    status_: Annotated[str | None, Query(alias="status", max_length=20, description="Only this status.")] = None,
    project: Annotated[str | None, ident_query("Only this project's jobs (id or name).")] = None,
    experiment: Annotated[str | None, ident_query("Only this experiment's jobs.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobPublic]:
    """Your jobs, newest first."""
    jobs = access.list_jobs(session, user, status=status_, project=project, experiment=experiment, limit=limit)
    return [JobPublic.model_validate(job) for job in jobs]


@router.get("/jobs/{job_id}")
def read_job(session: SessionDep, user: CurrentUser, job_id: JobId) -> JobDetail:
    """One job, with its transitions."""
    job = access.get_job(session, user, job_id)
    detail = JobDetail.model_validate(job)
    detail.events = [JobEventPublic.model_validate(e) for e in access.job_events(session, job)]
    return detail


@router.post("/jobs/{job_id}/cancel")
def cancel(session: SessionDep, user: CurrentUser, job_id: JobId) -> JobPublic:
    """Cancel a queued or running job (its processes are killed); 409 if it has ended."""
    return JobPublic.model_validate(cancel_job(session, user, job_id))


@router.post("/jobs/reconcile")
def reconcile(session: SessionDep, user: CurrentUser, body: list[BilledAmount]) -> list[ReconciliationPublic]:
    """Record the provider's billed amounts for your finished jobs; the differences count toward your spend."""
    for item in body:
        access.get_job(session, user, item.job_id)
    entries = cost.reconcile(session, [(item.job_id, item.billed_usd) for item in body])
    return [ReconciliationPublic(job_id=e.job_id, billed_usd=e.billed_usd, recorded_usd=e.recorded_usd,
                                 difference_usd=e.difference_usd) for e in entries]


@router.get("/jobs/{job_id}/logs", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "The log as SSE."}})
def logs(
    session: SessionDep,
    user: CurrentUser,
    job_id: JobId,
    follow_: Annotated[bool, Query(alias="follow", description="Keep streaming until the job ends.")] = True,
    offset: Annotated[int, Query(ge=0, le=2**62, description="Start at this byte.")] = 0,
) -> StreamingResponse:
    """The job's log as Server-Sent Events: one `data:` per line, then `event: end` with the final status."""
    job = access.get_job(session, user, job_id)
    path = Path(job.log_path) if job.log_path else log_path(job.id)
    return StreamingResponse(sse(job.id, path, follow=follow_, offset=offset), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _status(job_id: str) -> str:
    with session_scope(get_engine()) as session:
        job = session.get(Job, job_id)
        return job.status if job is not None else "cancelled"


def sse(job_id: str, path: Path, *, follow: bool = True, offset: int = 0) -> Iterator[bytes]:
    """The SSE stream of a job's log: complete lines as `data:` events (with their byte offset as `id:`)."""
    pending = b""
    position = offset
    chunks = follow_log(job_id, path, offset=offset) if follow else _once(path, offset)
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            position += len(line) + 1
            yield b"id: %d\ndata: %s\n\n" % (position, line.rstrip(b"\r"))
    if pending:
        yield b"id: %d\ndata: %s\n\n" % (position + len(pending), pending)
    yield f"event: end\ndata: {json.dumps({'status': _status(job_id)})}\n\n".encode()


def follow_log(job_id: str, path: Path, *, offset: int = 0) -> Iterator[bytes]:
    """The log's bytes until the job has ended."""
    return follow(path, lambda: _status(job_id) in TERMINAL_STATUSES, offset=offset, poll_s=0.25)


def _once(path: Path, offset: int) -> Iterator[bytes]:
    return follow(path, lambda: True, offset=offset)
