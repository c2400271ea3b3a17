"""The dataset and episode tables. An eval is a dataset whose provenance (experiment, iteration, job) is set.

The dataset folder is the source of truth for its episodes (its sidecar log makes it self-describing);
the `episodes` table mirrors the folder's records so they can be queried across datasets quickly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store.base import Base, JSONType, UTCDateTime, utcnow


class Dataset(Base):
    """Episodes of robot data in LeRobot v2.1 layout, registered in the store."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    root_path: Mapped[str] = mapped_column(String(1000), default="")
    robot_type: Mapped[str] = mapped_column(String(100), default="")
    fps: Mapped[int] = mapped_column(Integer, default=50)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    generated_by_experiment_id: Mapped[str | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True, default=None
    )
    generated_by_iteration_id: Mapped[str | None] = mapped_column(
        ForeignKey("iterations.id", ondelete="CASCADE"), index=True, default=None
    )
    generated_by_job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_eval(self) -> bool:
        """True for an eval: a dataset produced by a job, with its provenance recorded."""
        return self.generated_by_iteration_id is not None


class Episode(Base):
    """The database mirror of one episode record of a dataset folder."""

    __tablename__ = "episodes"
    __table_args__ = (
        UniqueConstraint("dataset_id", "episode_index"),
        Index("ix_episodes_query", "dataset_id", "soft_deleted", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    episode_index: Mapped[int] = mapped_column(Integer)
    episode_id: Mapped[str] = mapped_column(String(64))
    chunk_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    total_frames: Mapped[int] = mapped_column(Integer)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(Text, default="")
    success: Mapped[bool | None] = mapped_column(Boolean, default=None)
    soft_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(200), default="record")
    skew_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    max_skew_ms: Mapped[float | None] = mapped_column(Float, default=None)
