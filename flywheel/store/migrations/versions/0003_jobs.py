"""jobs: lifecycle, cost, heartbeats, runner handle, logs; job events and cost reconciliations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Columns are added in place (no table copy): on SQLite a batch copy of `jobs` would drop the old table,
and with foreign keys on that runs ON DELETE SET NULL on `iterations.job_id` and
`datasets.generated_by_job_id`. For the same reason `jobs.iteration_id` is a plain indexed column, not a
foreign key (SQLite cannot add one in place); the job code treats a deleted iteration as gone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import flywheel.store.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = flywheel.store.base.UTCDateTime(timezone=True)

#: (name, type, server default or None for nullable)
COLUMNS: list[tuple[str, sa.types.TypeEngine, object]] = [
    ("kind", sa.String(length=20), "train"),
    ("overrides", JSON, "{}"),
    ("input_dataset_ids", JSON, "[]"),
    ("input_asset_ids", JSON, "[]"),
    ("notes", sa.Text(), ""),
    ("reason", sa.String(length=40), ""),
    ("stop_requested", sa.String(length=40), ""),
    ("queue_seq", sa.BigInteger(), "0"),
    ("attempt", sa.Integer(), "0"),
    ("runner", sa.String(length=20), "local"),
    ("gpu_type", sa.String(length=40), "cpu"),
    ("spot", sa.Boolean(), sa.false()),
    ("price_per_hour_usd", sa.Float(), "0"),
    ("max_runtime_s", sa.Float(), "3600"),
    ("estimated_cost_usd", sa.Float(), "0"),
    ("current_cost_usd", sa.Float(), "0"),
    ("final_cost_usd", sa.Float(), None),
    ("claimed_by", sa.String(length=100), ""),
    ("pid", sa.Integer(), None),
    ("pgid", sa.Integer(), None),
    ("handle", JSON, "{}"),
    ("heartbeat_at", TIME, None),
    ("elapsed_s", sa.Float(), "0"),
    ("step", sa.BigInteger(), "0"),
    ("epoch", sa.Integer(), "0"),
    ("metrics", JSON, "{}"),
    ("output_asset_ids", JSON, "[]"),
    ("eval_ids", JSON, "[]"),
    ("log_path", sa.String(length=1000), ""),
    ("log_asset_id", sa.String(length=32), None),
    ("queued_at", TIME, None),
    ("provisioning_at", TIME, None),
    ("started_at", TIME, None),
    ("finished_at", TIME, None),
]


def upgrade() -> None:
    op.create_table(
        "job_cost_reconciliations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("billed_usd", sa.Float(), nullable=False),
        sa.Column("recorded_usd", sa.Float(), nullable=False),
        sa.Column("difference_usd", sa.Float(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_cost_reconciliations_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_cost_reconciliations")),
    )
    op.create_index(op.f("ix_job_cost_reconciliations_job_id"), "job_cost_reconciliations", ["job_id"])
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_events_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index(op.f("ix_job_events_job_id"), "job_events", ["job_id"])

    for name, type_, default in COLUMNS:
        op.add_column("jobs", sa.Column(name, type_, nullable=default is None, server_default=default))
    op.add_column("jobs", sa.Column("iteration_id", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_jobs_iteration_id"), "jobs", ["iteration_id"])
    op.create_index("ix_jobs_queue", "jobs", ["status", "owner_id", "queue_seq"])


def downgrade() -> None:
    op.drop_index("ix_jobs_queue", table_name="jobs")
    op.drop_index(op.f("ix_jobs_iteration_id"), table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("iteration_id")
        for name, _type, _default in reversed(COLUMNS):
            batch.drop_column(name)
    op.drop_index(op.f("ix_job_events_job_id"), table_name="job_events")
    op.drop_table("job_events")
    op.drop_index(op.f("ix_job_cost_reconciliations_job_id"), table_name="job_cost_reconciliations")
    op.drop_table("job_cost_reconciliations")
