"""Cost: per-second billing from a price table, estimates, live spend, and reconciliation with the provider.

Prices are US dollars per hour, keyed by GPU type and spot/on-demand; a job costs
`price_per_hour × seconds / 3600` from the moment it starts running. CPU-only jobs are free by default
(they run on the machine you already have).

Example:
    >>> price_per_hour("t4", spot=False)
    0.35
    >>> round(cost(0.35, seconds=3600), 4)
    0.35
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput, NotFound
from flywheel.jobs.models import ACTIVE_STATUSES, CostReconciliation, Job
from flywheel.platform.models import User

#: GPU type -> (on-demand, spot) USD per hour. Typical public cloud list prices of one GPU.
PRICES: dict[str, tuple[float, float]] = {
    "cpu": (0.0, 0.0),
    "t4": (0.35, 0.11),
    "l4": (0.70, 0.22),
    "a10g": (1.01, 0.30),
    "a100": (3.67, 1.10),
    "h100": (6.98, 2.50),
}

#: Seconds added to every estimate for starting the process and storing the outputs.
OVERHEAD_S = 30.0


def price_per_hour(gpu_type: str, *, spot: bool) -> float:
    """The hourly price of one `gpu_type` (spot or on-demand).

    Raises:
        InvalidInput: unknown GPU type (names the allowed ones).
    """
    prices = PRICES.get(gpu_type)
    if prices is None:
        raise InvalidInput(f"unknown GPU type {gpu_type!r}", field="gpu_type", allowed=sorted(PRICES))
    return prices[1] if spot else prices[0]


def cost(price_per_hour_usd: float, *, seconds: float) -> float:
    """What `seconds` at `price_per_hour_usd` cost, billed per second."""
    return price_per_hour_usd * max(0.0, seconds) / 3600.0


def estimate_seconds(kind: str, config: dict[str, Any], *, steps_per_second: float, max_runtime_s: float) -> float:
    """How long a job is expected to run: a sleep job its `seconds`, a training job its timesteps at
    `steps_per_second`, plus start-up overhead; never more than its time limit."""
    if kind == "sleep":
        expected = float(config.get("seconds", 0.0))
    else:
        expected = float(config.get("total_timesteps", 0)) / steps_per_second
    return min(max_runtime_s, expected + OVERHEAD_S)


def live_spend(session: Session, user: User) -> float:
    """What the user has spent: settled spend plus the current cost of their active jobs."""
    running = session.scalar(
        select(func.coalesce(func.sum(Job.current_cost_usd), 0.0)).where(
            Job.owner_id == user.id, Job.status.in_(ACTIVE_STATUSES)
        )
    )
    return float(user.spend_usd) + float(running or 0.0)


def limit_reached(session: Session, user: User) -> bool:
    """Whether the user's spend has reached their limit (a zero limit is reached at once)."""
    session.refresh(user)
    return live_spend(session, user) >= float(user.spend_limit_usd) and float(user.spend_limit_usd) >= 0


def settle(session: Session, job: Job, final_usd: float) -> None:
    """Record a finished job's final cost and add it to its owner's spend (once: only if not settled)."""
    if job.final_cost_usd is not None:
        return
    job.final_cost_usd = final_usd
    job.current_cost_usd = final_usd
    user = session.get(User, job.owner_id)
    if user is not None:
        user.spend_usd = float(user.spend_usd) + final_usd
    session.flush()


def reconcile(session: Session, billed: Iterable[tuple[str, float]]) -> list[CostReconciliation]:
    """Record the provider's billed amounts against the final costs Flywheel recorded.

    Each difference (billed − recorded) is stored and added to the owner's spend, so the spend limit
    counts what was really billed.

    Example:
        >>> reconcile(session, [("job_0123456789ab", 0.12)])[0].difference_usd  # doctest: +SKIP
        0.004

    Raises:
        NotFound: a job id does not exist. InvalidInput: a negative amount or an unfinished job.
    """
    entries = []
    for job_id, amount in billed:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound("job", job_id)
        if amount < 0:
            raise InvalidInput(f"billed amount {amount} for {job_id} is negative", field="billed", allowed="≥ 0")
        if job.final_cost_usd is None:
            raise InvalidInput(f"job {job_id} is {job.status}; reconcile finished jobs only", field="billed")
        recorded = float(job.final_cost_usd)
        previous = session.scalar(
            select(CostReconciliation).where(CostReconciliation.job_id == job_id).order_by(
                CostReconciliation.id.desc())
        )
        baseline = previous.billed_usd if previous is not None else recorded
        entry = CostReconciliation(job_id=job_id, billed_usd=float(amount), recorded_usd=recorded,
                                   difference_usd=float(amount) - recorded)
        session.add(entry)
        user = session.get(User, job.owner_id)
        if user is not None:
            user.spend_usd = float(user.spend_usd) + float(amount) - baseline
        entries.append(entry)
    session.flush()
    return entries
