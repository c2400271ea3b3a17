"""dataset episodes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import flywheel.store.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "episodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("episode_index", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.String(length=64), nullable=False),
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("total_frames", sa.Integer(), nullable=False),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("soft_deleted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("skew_flagged", sa.Boolean(), nullable=False),
        sa.Column("max_skew_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_episodes_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodes")),
        sa.UniqueConstraint("dataset_id", "episode_index", name=op.f("uq_episodes_dataset_id")),
    )
    op.create_index("ix_episodes_query", "episodes", ["dataset_id", "soft_deleted", "created_at"], unique=False)
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("robot_type", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("fps", sa.Integer(), nullable=False, server_default="50"))
        batch.add_column(
            sa.Column(
                "features",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="{}",
            )
        )
        batch.create_unique_constraint(op.f("uq_datasets_owner_id"), ["owner_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_constraint(op.f("uq_datasets_owner_id"), type_="unique")
        batch.drop_column("features")
        batch.drop_column("fps")
        batch.drop_column("robot_type")
    op.drop_index("ix_episodes_query", table_name="episodes")
    op.drop_table("episodes")
