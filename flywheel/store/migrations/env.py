"""Alembic environment: runs on the engine handed over by flywheel.store.migrate."""

from __future__ import annotations

from alembic import context

import flywheel.models  # noqa: F401  (registers every table on Base.metadata)
from flywheel.store.base import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
