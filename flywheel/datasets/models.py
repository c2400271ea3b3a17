"""The dataset table. An eval is a dataset whose provenance (experiment, iteration, job) is set."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store.base import Base, UTCDateTime, utcnow


class Dataset(Base):
    """Episodes of robot data in LeRobot v2.1 layout, registered in the store."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    root_path: Mapped[str] = mapped_column(String(1000), default="")
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
