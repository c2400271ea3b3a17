"""Database engine, sessions, ORM base and migrations (SQLite by default, PostgreSQL by URL)."""

from flywheel.store.base import Base, new_id, utcnow
from flywheel.store.engine import get_engine, session_scope

__all__ = ["Base", "get_engine", "new_id", "session_scope", "utcnow"]
