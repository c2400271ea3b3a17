"""Fixtures for the autoresearch loop tests: a home whose jobs beat and are polled fast, a project, a space."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from flywheel.autoresearch.space import SearchSpace
from flywheel.platform.models import Project, User
from flywheel.platform.projects import create_project
from flywheel.platform.schemas import ProjectCreate

SPACE_YAML = "x: {type: float, low: 0.0, high: 1.0}\n"


@pytest.fixture
def ar_home(flywheel_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose jobs beat every 0.5 s and are polled every 0.1 s."""
    monkeypatch.setenv("FLYWHEEL_JOB_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("FLYWHEEL_JOB_DEAD_AFTER_S", "15")
    monkeypatch.setenv("FLYWHEEL_JOB_POLL_S", "0.1")
    monkeypatch.setenv("FLYWHEEL_JOB_STOP_GRACE_S", "5")
    return flywheel_home


@pytest.fixture
def project(ar_home: Path, session: Session, user: User) -> Project:
    """A committed project of `user` called drive."""
    created = create_project(session, user, ProjectCreate(name="drive"))
    session.commit()
    return created


@pytest.fixture
def space() -> SearchSpace:
    """One float in [0, 1]."""
    return SearchSpace.from_yaml(SPACE_YAML)


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """An empty bare git repository standing in for the remote."""
    path = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def remote_log(bare: Path) -> list[str]:
    """Commit subjects on the remote's main branch, newest first."""
    out = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%s", "main"], capture_output=True,
                         text=True, check=False)
    return out.stdout.splitlines() if out.returncode == 0 else []


def remote_file(bare: Path, path: str) -> str:
    """A file's text on the remote's main branch."""
    return subprocess.run(["git", "--git-dir", str(bare), "show", f"main:{path}"], capture_output=True, text=True,
                          check=True).stdout
