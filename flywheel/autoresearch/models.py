"""The search in the database: one row per autoresearch run, one per trial (a mirror of the results JSONL).

The JSONL next to the results stays the crash-safe log (appended and fsynced before a trial counts as
done); these rows let the store, the API and the UI see a sweep, let a restarted controller find the jobs
its predecessor left running, and let a new search on the same project learn from every earlier one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store.base import Base, JSONType, UTCDateTime, utcnow

#: Trial row states: ``running`` until its record is in the JSONL, then the record's run_status.
TRIAL_STATES = ("running", "ok", "failed", "timeout", "abandoned")


class AutoresearchRun(Base):
    """One search: a project, a template, a space and a results folder (resumed when started again)."""

    __tablename__ = "autoresearch_runs"
    __table_args__ = (UniqueConstraint("project_id", "results_path"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    experiment: Mapped[str] = mapped_column(String(200), default="")
    template: Mapped[str] = mapped_column(String(100), default="")
    results_path: Mapped[str] = mapped_column(String(1000))
    space: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")
    stop_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AutoresearchTrial(Base):
    """One trial of a run: what was proposed, which job ran it, how it ended."""

    __tablename__ = "autoresearch_trials"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("autoresearch_runs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")
    mean_reward: Mapped[float | None] = mapped_column(Float, default=None)
    std_reward: Mapped[float | None] = mapped_column(Float, default=None)
    champion: Mapped[bool] = mapped_column(Boolean, default=False)
    job_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    iteration_id: Mapped[str | None] = mapped_column(String(32), default=None)
    model_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    elapsed_s: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
