"""Users, projects, experiments, iterations, assets and templates: the platform's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flywheel.store.base import Base, JSONType, UTCDateTime, utcnow

experiment_datasets = Table(
    "experiment_datasets",
    Base.metadata,
    Column("experiment_id", ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
)

iteration_input_datasets = Table(
    "iteration_input_datasets",
    Base.metadata,
    Column("iteration_id", ForeignKey("iterations.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
)

iteration_input_assets = Table(
    "iteration_input_assets",
    Base.metadata,
    Column("iteration_id", ForeignKey("iterations.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """A person (or a robot team's service account) with an API key and a spend limit."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    spend_limit_usd: Mapped[float] = mapped_column(Float, default=100.0)
    spend_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Project(Base):
    """One task being solved."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    showcases: Mapped[list[Showcase]] = relationship(
        order_by="Showcase.position", cascade="all, delete-orphan", passive_deletes=True
    )


class Showcase(Base):
    """One of up to five showcase videos of a project, taken from an eval of one of its experiments."""

    __tablename__ = "showcases"
    __table_args__ = (UniqueConstraint("project_id", "eval_id", "episode_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    eval_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    episode_index: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Template(Base):
    """A versioned training recipe: config schema, defaults and the commit of the code behind it."""

    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(Text, default="")
    config_schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    default_config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    git_commit: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Experiment(Base):
    """One approach inside a project; experiments form trees and can be forked from an iteration."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL"), index=True, default=None
    )
    forked_from_id: Mapped[str | None] = mapped_column(ForeignKey("experiments.id", ondelete="SET NULL"), default=None)
    forked_from_iteration_id: Mapped[str | None] = mapped_column(
        ForeignKey("iterations.id", ondelete="SET NULL", use_alter=True), default=None
    )
    template_id: Mapped[str | None] = mapped_column(ForeignKey("templates.id"), default=None)
    template_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    git_repo: Mapped[str] = mapped_column(String(500), default="")
    git_commit: Mapped[str] = mapped_column(String(64), default="")
    next_iteration_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    datasets: Mapped[list[Any]] = relationship("Dataset", secondary=experiment_datasets)


class Iteration(Base):
    """One attempt inside an experiment: its inputs, the job that ran, and its outputs."""

    __tablename__ = "iterations"
    __table_args__ = (UniqueConstraint("experiment_id", "index"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    config_overrides: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="created")
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    input_datasets: Mapped[list[Any]] = relationship("Dataset", secondary=iteration_input_datasets)
    input_assets: Mapped[list[Asset]] = relationship("Asset", secondary=iteration_input_assets)
    output_assets: Mapped[list[Asset]] = relationship(
        "Asset", primaryjoin="Asset.iteration_id == Iteration.id", viewonly=True
    )
    output_evals: Mapped[list[Any]] = relationship(
        "Dataset", primaryjoin="Dataset.generated_by_iteration_id == Iteration.id", viewonly=True
    )


class Asset(Base):
    """An untyped blob (checkpoint, ONNX file, config) referenced by its sha256; forks link, never copy."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    iteration_id: Mapped[str | None] = mapped_column(
        ForeignKey("iterations.id", ondelete="CASCADE"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(300))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    blob_hash: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    linked_from_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
