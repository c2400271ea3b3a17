"""How every job ends, whoever ends it (its worker, the scheduler finding it dead, a cancel).

One function, so the ending is the same in all cases: the final cost is fixed (per second from when it
started running) and added to the owner's spend, the log is kept as an asset, the iteration is marked
(`completed`, `failed` or `cancelled`, with a note), and the job makes its last move. All in the caller's
transaction, and only if the move wins the race (see :func:`flywheel.jobs.lifecycle.move`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from flywheel.jobs import cost
from flywheel.jobs.kinds import Outcome
from flywheel.jobs.lifecycle import move
from flywheel.jobs.logs import persist_log
from flywheel.jobs.models import Job
from flywheel.platform.models import Iteration, User
from flywheel.store.base import utcnow

#: A stop reason -> the final state it leads to.
STOP_STATES = {"preempted": "failed", "timeout": "failed", "spend limit": "cancelled",
               "cancelled by user": "cancelled", "project deleted": "cancelled"}


def final_state(stop_reason: str, *, crashed: bool) -> tuple[str, str]:
    """(status, reason) of a run that returned (or raised) after `stop_reason` was asked for.

    Example:
        >>> final_state("", crashed=False), final_state("spend limit", crashed=False)
        (('completed', ''), ('cancelled', 'spend limit'))
    """
    if stop_reason:
        return ("failed" if crashed else STOP_STATES.get(stop_reason, "cancelled")), stop_reason
    return ("failed", "crashed") if crashed else ("completed", "")


def end_job(session: Session, job: Job, status: str, *, reason: str = "", message: str = "",
            attempt: int | None = None, outcome: Outcome | None = None) -> Job:
    """Move `job` to its final `status`, settling cost, log and iteration. Raises Conflict if it lost the race."""
    now = utcnow()
    started = job.started_at
    seconds = (now - started).total_seconds() if started is not None else 0.0
    final = cost.cost(job.price_per_hour_usd, seconds=seconds)
    values: dict[str, Any] = {"final_cost_usd": final, "current_cost_usd": final, "stop_requested": ""}
    if started is not None:
        values["elapsed_s"] = seconds
    if outcome is not None:
        values["output_asset_ids"] = outcome.asset_ids
        values["eval_ids"] = outcome.eval_ids
    move(session, job, status, reason=reason, message=message, attempt=attempt, values=values, at=now)
    job.log_asset_id = persist_log(session, job)
    user = session.get(User, job.owner_id)
    if user is not None:
        user.spend_usd = float(user.spend_usd) + final
    iteration = session.get(Iteration, job.iteration_id) if job.iteration_id else None
    if iteration is not None:
        iteration.status = status
        line = {"completed": f"job {job.id} completed", "failed": f"job {job.id} failed",
                "cancelled": f"job {job.id} cancelled"}[status]
        if reason:
            line += f" ({reason})"
        if message:
            line += f": {message.strip().splitlines()[-1][:500]}"
        if outcome is not None and outcome.summary:
            line += f"; {outcome.summary}"
        if outcome is not None and outcome.asset_ids and status != "completed":
            line += "; the checkpoint is kept"
        iteration.notes = f"{iteration.notes}\n{line}".strip("\n")
    session.flush()
    return job
