"""aliases: a project's named pointers to iterations (``champion``)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flywheel.store.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("iteration_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["iteration_id"], ["iterations.id"], name=op.f("fk_aliases_iteration_id_iterations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_aliases_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_aliases_project_id")),
    )
    op.create_index(op.f("ix_aliases_project_id"), "aliases", ["project_id"], unique=False)
    op.create_index(op.f("ix_aliases_iteration_id"), "aliases", ["iteration_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_aliases_iteration_id"), table_name="aliases")
    op.drop_index(op.f("ix_aliases_project_id"), table_name="aliases")
    op.drop_table("aliases")
