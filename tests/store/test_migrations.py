"""Migrations: applied automatically, matching the models exactly, reversible."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import flywheel.models  # noqa: F401
from flywheel.store.base import Base
from flywheel.store.engine import dispose_engines, get_engine, make_engine
from flywheel.store.migrate import alembic_config, upgrade


def test_schema_matches_models_after_migration(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "experiments" in inspect(engine).get_table_names()
    engine.dispose()


def test_first_use_creates_the_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "home" / "flywheel.db"
    engine = get_engine(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert {"projects", "experiments", "iterations", "assets"} <= set(inspect(engine).get_table_names())
    finally:
        dispose_engines()
