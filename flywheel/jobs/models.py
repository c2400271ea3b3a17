"""The job tables: the job itself (a persisted state machine), its event log, and cost reconciliations.

A job moves `queued → provisioning → running → completed | failed | cancelled` (see
:mod:`flywheel.jobs.lifecycle`); every move is a row in `job_events`, and the job keeps one timestamp per
state. A crash between any two states leaves a row that says exactly where the job was, which is what the
scheduler's reconciliation reads on restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store.base import Base, JSONType, UTCDateTime, utcnow

ACTIVE_STATUSES = ("queued", "provisioning", "running")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
STATUSES = (*ACTIVE_STATUSES, *TERMINAL_STATUSES)


class Job(Base):
    """One execution of a template that produces one iteration."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_queue", "status", "owner_id", "queue_seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    iteration_index: Mapped[int] = mapped_column(Integer)
    #: The iteration this job fills (created at submission). Not a foreign key: see migration 0003.
    iteration_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    #: "train" (a template run) or "sleep" (a trivial job for tests and benchmarks, see flywheel.jobs.kinds).
    kind: Mapped[str] = mapped_column(String(20), default="train")
    template_id: Mapped[str | None] = mapped_column(ForeignKey("templates.id"), default=None)
    template_commit: Mapped[str] = mapped_column(String(64), default="")
    #: The full config: experiment base + iteration overrides, validated by the template.
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: The iteration's overrides alone (what the user asked for).
    overrides: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    input_dataset_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    input_asset_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")

    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    #: Why the job ended as it did: preempted, spend limit, timeout, dead, crashed, cancelled by user, ...
    reason: Mapped[str] = mapped_column(String(40), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    #: A graceful stop was asked for (the reason); the worker's should_stop turns True.
    stop_requested: Mapped[str] = mapped_column(String(40), default="")
    #: FIFO order within a user's queue (nanoseconds at submission).
    queue_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)

    runner: Mapped[str] = mapped_column(String(20), default="local")
    gpu_type: Mapped[str] = mapped_column(String(40), default="cpu")
    spot: Mapped[bool] = mapped_column(Boolean, default=False)
    price_per_hour_usd: Mapped[float] = mapped_column(Float, default=0.0)
    max_runtime_s: Mapped[float] = mapped_column(Float, default=3600.0)
    estimated_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    current_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    final_cost_usd: Mapped[float | None] = mapped_column(Float, default=None)

    #: Which scheduler claimed it, and what the runner needs to find it again (pid, pgid, host, task id).
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    pgid: Mapped[int | None] = mapped_column(Integer, default=None)
    handle: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    elapsed_s: Mapped[float] = mapped_column(Float, default=0.0)
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    output_asset_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    eval_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    log_path: Mapped[str] = mapped_column(String(1000), default="")
    log_asset_id: Mapped[str | None] = mapped_column(String(32), default=None)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    provisioning_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class JobEvent(Base):
    """One transition of a job (or a notable event inside a state), append-only."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str] = mapped_column(String(20), default="")
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class CostReconciliation(Base):
    """A provider's billed amount for a job against what Flywheel recorded, and the difference."""

    __tablename__ = "job_cost_reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    billed_usd: Mapped[float] = mapped_column(Float)
    recorded_usd: Mapped[float] = mapped_column(Float)
    difference_usd: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
