"""autoresearch: runs and trials (the database mirror of each search's results JSONL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import flywheel.store.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = flywheel.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "autoresearch_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("experiment", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("results_path", sa.String(length=1000), nullable=False),
        sa.Column("space", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_autoresearch_runs_owner_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_autoresearch_runs_project_id_projects"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_autoresearch_runs")),
        sa.UniqueConstraint("project_id", "results_path", name=op.f("uq_autoresearch_runs_project_id")),
    )
    op.create_index(op.f("ix_autoresearch_runs_owner_id"), "autoresearch_runs", ["owner_id"], unique=False)
    op.create_index(op.f("ix_autoresearch_runs_project_id"), "autoresearch_runs", ["project_id"], unique=False)
    op.create_table(
        "autoresearch_trials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("mean_reward", sa.Float(), nullable=True),
        sa.Column("std_reward", sa.Float(), nullable=True),
        sa.Column("champion", sa.Boolean(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("iteration_id", sa.String(length=32), nullable=True),
        sa.Column("model_path", sa.String(length=1000), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["autoresearch_runs.id"],
                                name=op.f("fk_autoresearch_trials_run_id_autoresearch_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_autoresearch_trials")),
        sa.UniqueConstraint("run_id", "number", name=op.f("uq_autoresearch_trials_run_id")),
    )
    op.create_index(op.f("ix_autoresearch_trials_run_id"), "autoresearch_trials", ["run_id"], unique=False)
    op.create_index(op.f("ix_autoresearch_trials_job_id"), "autoresearch_trials", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_autoresearch_trials_job_id"), table_name="autoresearch_trials")
    op.drop_index(op.f("ix_autoresearch_trials_run_id"), table_name="autoresearch_trials")
    op.drop_table("autoresearch_trials")
    op.drop_index(op.f("ix_autoresearch_runs_project_id"), table_name="autoresearch_runs")
    op.drop_index(op.f("ix_autoresearch_runs_owner_id"), table_name="autoresearch_runs")
    op.drop_table("autoresearch_runs")
