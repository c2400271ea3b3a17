"""safety: emergency-stop events and latches

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

`estop_events` is the append-only log of every stop and reset (who, when, scope, reason, forced);
`estop_latches` holds the current latch of each scope, read by control loops once per tick.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flywheel.store.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "estop_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_estop_events_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estop_events")),
    )
    op.create_index(op.f("ix_estop_events_created_at"), "estop_events", ["created_at"], unique=False)
    op.create_table(
        "estop_latches",
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("latched", sa.Boolean(), nullable=False),
        sa.Column("held_by_id", sa.String(length=32), nullable=True),
        sa.Column("held_by_name", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", flywheel.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["estop_events.id"], name=op.f("fk_estop_latches_event_id_estop_events")
        ),
        sa.ForeignKeyConstraint(
            ["held_by_id"], ["users.id"], name=op.f("fk_estop_latches_held_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_estop_latches")),
    )


def downgrade() -> None:
    op.drop_table("estop_latches")
    op.drop_index(op.f("ix_estop_events_created_at"), table_name="estop_events")
    op.drop_table("estop_events")
