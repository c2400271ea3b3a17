"""The emergency stop's tables: every stop and reset as an event, and the current latch of each scope.

``estop_events`` is append-only (who, when, stop or reset, why, which scope); ``estop_latches`` holds one row
per scope that was ever stopped, updated in the same transaction as its event, so a control loop reads its
state with one primary-key lookup per tick.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store.base import Base, UTCDateTime, utcnow


class EstopEvent(Base):
    """One press of the emergency stop, or one reset of it."""

    __tablename__ = "estop_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    user_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(Boolean, default=False)


class EstopLatch(Base):
    """The latch of one scope (``*`` = every device): latched or not, and who holds it."""

    __tablename__ = "estop_latches"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    latched: Mapped[bool] = mapped_column(Boolean, default=False)
    held_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    held_by_name: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("estop_events.id"), nullable=True)
