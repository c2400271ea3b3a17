"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import flywheel.store.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "config_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "default_config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("git_commit", sa.String(length=64), nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("spend_limit_usd", sa.Float(), nullable=False),
        sa.Column("spend_usd", sa.Float(), nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_users_api_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_projects_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_projects_owner_id")),
    )
    op.create_index(op.f("ix_projects_owner_id"), "projects", ["owner_id"], unique=False)
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("forked_from_id", sa.String(length=32), nullable=True),
        sa.Column("forked_from_iteration_id", sa.String(length=32), nullable=True),
        sa.Column("template_id", sa.String(length=100), nullable=True),
        sa.Column(
            "template_config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("git_repo", sa.String(length=500), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=False),
        sa.Column("next_iteration_index", sa.Integer(), nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["forked_from_id"],
            ["experiments.id"],
            name=op.f("fk_experiments_forked_from_id_experiments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["experiments.id"],
            name=op.f("fk_experiments_parent_id_experiments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_experiments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["template_id"], ["templates.id"], name=op.f("fk_experiments_template_id_templates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(op.f("ix_experiments_parent_id"), "experiments", ["parent_id"], unique=False)
    op.create_index(op.f("ix_experiments_project_id"), "experiments", ["project_id"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("iteration_index", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=100), nullable=True),
        sa.Column("template_commit", sa.String(length=64), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_jobs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_jobs_owner_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["template_id"], ["templates.id"], name=op.f("fk_jobs_template_id_templates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_experiment_id"), "jobs", ["experiment_id"], unique=False)
    op.create_index(op.f("ix_jobs_owner_id"), "jobs", ["owner_id"], unique=False)
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)
    op.create_table(
        "iterations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column(
            "config_overrides",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_iterations_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_iterations_job_id_jobs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iterations")),
        sa.UniqueConstraint("experiment_id", "index", name=op.f("uq_iterations_experiment_id")),
    )
    op.create_index(op.f("ix_iterations_experiment_id"), "iterations", ["experiment_id"], unique=False)
    # experiments <-> iterations refer to each other: the second foreign key comes once both exist.
    with op.batch_alter_table("experiments") as batch:
        batch.create_foreign_key(
            op.f("fk_experiments_forked_from_iteration_id_iterations"),
            "iterations",
            ["forked_from_iteration_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "assets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("iteration_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("blob_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("linked_from_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_assets_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["iteration_id"],
            ["iterations.id"],
            name=op.f("fk_assets_iteration_id_iterations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["linked_from_id"],
            ["assets.id"],
            name=op.f("fk_assets_linked_from_id_assets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    op.create_index(op.f("ix_assets_blob_hash"), "assets", ["blob_hash"], unique=False)
    op.create_index(op.f("ix_assets_experiment_id"), "assets", ["experiment_id"], unique=False)
    op.create_index(op.f("ix_assets_iteration_id"), "assets", ["iteration_id"], unique=False)
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("root_path", sa.String(length=1000), nullable=False),
        sa.Column("generated_by_experiment_id", sa.String(length=32), nullable=True),
        sa.Column("generated_by_iteration_id", sa.String(length=32), nullable=True),
        sa.Column("generated_by_job_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", flywheel.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generated_by_experiment_id"],
            ["experiments.id"],
            name=op.f("fk_datasets_generated_by_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["generated_by_iteration_id"],
            ["iterations.id"],
            name=op.f("fk_datasets_generated_by_iteration_id_iterations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["generated_by_job_id"],
            ["jobs.id"],
            name=op.f("fk_datasets_generated_by_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_datasets_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    op.create_index(
        op.f("ix_datasets_generated_by_experiment_id"),
        "datasets",
        ["generated_by_experiment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_datasets_generated_by_iteration_id"), "datasets", ["generated_by_iteration_id"], unique=False
    )
    op.create_index(op.f("ix_datasets_generated_by_job_id"), "datasets", ["generated_by_job_id"], unique=False)
    op.create_index(op.f("ix_datasets_owner_id"), "datasets", ["owner_id"], unique=False)
    op.create_table(
        "experiment_datasets",
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_experiment_datasets_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_datasets_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "dataset_id", name=op.f("pk_experiment_datasets")),
    )
    op.create_table(
        "iteration_input_assets",
        sa.Column("iteration_id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_iteration_input_assets_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["iteration_id"],
            ["iterations.id"],
            name=op.f("fk_iteration_input_assets_iteration_id_iterations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("iteration_id", "asset_id", name=op.f("pk_iteration_input_assets")),
    )
    op.create_table(
        "iteration_input_datasets",
        sa.Column("iteration_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_iteration_input_datasets_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["iteration_id"],
            ["iterations.id"],
            name=op.f("fk_iteration_input_datasets_iteration_id_iterations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("iteration_id", "dataset_id", name=op.f("pk_iteration_input_datasets")),
    )
    op.create_table(
        "showcases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("eval_id", sa.String(length=32), nullable=False),
        sa.Column("episode_index", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eval_id"], ["datasets.id"], name=op.f("fk_showcases_eval_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_showcases_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_showcases")),
        sa.UniqueConstraint("project_id", "eval_id", "episode_index", name=op.f("uq_showcases_project_id")),
    )
    op.create_index(op.f("ix_showcases_project_id"), "showcases", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_showcases_project_id"), table_name="showcases")
    op.drop_table("showcases")
    op.drop_table("iteration_input_datasets")
    op.drop_table("iteration_input_assets")
    op.drop_table("experiment_datasets")
    op.drop_index(op.f("ix_datasets_owner_id"), table_name="datasets")
    op.drop_index(op.f("ix_datasets_generated_by_job_id"), table_name="datasets")
    op.drop_index(op.f("ix_datasets_generated_by_iteration_id"), table_name="datasets")
    op.drop_index(op.f("ix_datasets_generated_by_experiment_id"), table_name="datasets")
    op.drop_table("datasets")
    op.drop_index(op.f("ix_assets_iteration_id"), table_name="assets")
    op.drop_index(op.f("ix_assets_experiment_id"), table_name="assets")
    op.drop_index(op.f("ix_assets_blob_hash"), table_name="assets")
    op.drop_table("assets")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_constraint(op.f("fk_experiments_forked_from_iteration_id_iterations"), type_="foreignkey")
    op.drop_index(op.f("ix_iterations_experiment_id"), table_name="iterations")
    op.drop_table("iterations")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_owner_id"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_experiment_id"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_experiments_project_id"), table_name="experiments")
    op.drop_index(op.f("ix_experiments_parent_id"), table_name="experiments")
    op.drop_table("experiments")
    op.drop_index(op.f("ix_projects_owner_id"), table_name="projects")
    op.drop_table("projects")
    op.drop_table("users")
    op.drop_table("templates")
