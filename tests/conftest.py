"""Shared fixtures: every storage test runs on SQLite and on the real PostgreSQL server that `make test` starts."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from flywheel.platform.models import User
from flywheel.platform.schemas import UserCreate
from flywheel.platform.users import create_user
from flywheel.store.engine import dispose_engines, get_engine, make_engine
from flywheel.store.migrate import upgrade

PG_URL = os.environ.get("FLYWHEEL_TEST_POSTGRES_URL", "")
PG_TEMPLATE = f"flywheel_template_{uuid.uuid4().hex[:8]}"  # one per test session: sessions may overlap


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "flywheel.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[str]:
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("FLYWHEEL_TEST_POSTGRES_URL is not set: under CI=true the PostgreSQL tests must run")
        pytest.skip("PostgreSQL is not available (run `make test`, which starts it); PostgreSQL half skipped")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {PG_TEMPLATE}"))
    template = make_engine(PG_URL.rsplit("/", 1)[0] + f"/{PG_TEMPLATE}")
    upgrade(template)
    template.dispose()
    yield PG_URL
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "flywheel.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    admin_url = request.getfixturevalue("_pg_admin")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {PG_TEMPLATE}"))
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def flywheel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    """Point Flywheel's settings at a private home and database for this test."""
    home = tmp_path / "home"
    monkeypatch.setenv("FLYWHEEL_HOME", str(home))
    monkeypatch.setenv("FLYWHEEL_DATABASE_URL", database_url)
    monkeypatch.delenv("FLYWHEEL_API_KEY", raising=False)
    monkeypatch.delenv("FLYWHEEL_BLOB_DIR", raising=False)
    monkeypatch.delenv("FLYWHEEL_DATASET_DIR", raising=False)
    yield home
    dispose_engines()


@pytest.fixture
def session(flywheel_home: Path) -> Iterator[Session]:
    """A session on the test's database; tests commit when they need committed state."""
    factory = sessionmaker(bind=get_engine(), expire_on_commit=False)
    with factory() as s:
        yield s


@pytest.fixture
def user(session: Session) -> User:
    """A user, committed."""
    created, _key = create_user(session, UserCreate(name="ada"))
    session.commit()
    return created


@pytest.fixture
def other_user(session: Session) -> User:
    """A second user, to check that one user cannot see another's objects."""
    created, _key = create_user(session, UserCreate(name="grace"))
    session.commit()
    return created
