"""Project aliases: service functions, `flywheel project alias`, and GET /api/v1/projects/{id}/aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flywheel.api.app import create_app
from flywheel.cli import app
from flywheel.errors import InvalidInput, NotFound
from flywheel.platform.aliases import get_alias, list_aliases, set_alias
from flywheel.platform.experiments import create_experiment
from flywheel.platform.iterations import create_iteration
from flywheel.platform.models import Iteration, Project, User
from flywheel.platform.projects import create_project
from flywheel.platform.schemas import ExperimentCreate, IterationCreate, ProjectCreate, UserCreate
from flywheel.platform.users import create_user


def _iteration(session: Session, user: User, project: Project, name: str = "e") -> Iteration:
    experiment = create_experiment(session, user, ExperimentCreate(project_id=project.id, name=name))
    iteration = create_iteration(session, user, experiment.id, IterationCreate())
    session.commit()
    return iteration


@pytest.fixture
def drive(flywheel_home: Path, session: Session, user: User) -> Project:
    created = create_project(session, user, ProjectCreate(name="drive"))
    session.commit()
    return created


def test_set_moves_and_get_reads_the_alias(session: Session, user: User, drive: Project) -> None:
    first, second = _iteration(session, user, drive, "a"), _iteration(session, user, drive, "b")
    set_alias(session, user, "drive", "champion", first.id)
    assert get_alias(session, user, drive.id, "champion").iteration_id == first.id
    set_alias(session, user, "drive", "champion", second.id)
    session.commit()
    assert get_alias(session, user, "drive", "champion").iteration_id == second.id
    assert [a.name for a in list_aliases(session, user, "drive")] == ["champion"]


def test_bad_name_foreign_iteration_and_missing_alias_are_refused(session: Session, user: User,
                                                                  drive: Project) -> None:
    iteration = _iteration(session, user, drive)
    other = create_project(session, user, ProjectCreate(name="look"))
    foreign = _iteration(session, user, other)
    with pytest.raises(InvalidInput) as bad:
        set_alias(session, user, "drive", "Bad Name", iteration.id)
    assert bad.value.field == "name"
    with pytest.raises(InvalidInput) as elsewhere:
        set_alias(session, user, "drive", "champion", foreign.id)
    assert elsewhere.value.field == "iteration"
    with pytest.raises(NotFound):
        get_alias(session, user, "drive", "champion")
    assert list_aliases(session, user, "drive") == []


def test_another_user_cannot_see_or_set_the_alias(session: Session, user: User, drive: Project) -> None:
    iteration = _iteration(session, user, drive)
    set_alias(session, user, "drive", "champion", iteration.id)
    grace, _ = create_user(session, UserCreate(name="grace"))
    session.commit()
    with pytest.raises(NotFound):
        get_alias(session, grace, drive.id, "champion")
    create_project(session, grace, ProjectCreate(name="drive"))
    with pytest.raises(NotFound):  # her own project "drive" cannot point at ada's iteration
        set_alias(session, grace, "drive", "champion", iteration.id)


@pytest.fixture
def owner(flywheel_home: Path, session: Session) -> tuple[User, str, Project]:
    """A user with a known API key and a project drive."""
    created, key = create_user(session, UserCreate(name="owner"))
    project = create_project(session, created, ProjectCreate(name="drive"))
    session.commit()
    return created, key, project


def test_cli_sets_shows_and_lists(session: Session, owner: tuple[User, str, Project],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    user, key, drive = owner
    iteration = _iteration(session, user, drive)
    look = create_project(session, user, ProjectCreate(name="look"))
    foreign = _iteration(session, user, look)
    monkeypatch.setenv("FLYWHEEL_API_KEY", key)
    runner = CliRunner()
    empty = runner.invoke(app, ["project", "alias", "drive"])
    assert empty.exit_code == 0 and "no aliases" in empty.output
    done = runner.invoke(app, ["project", "alias", "drive", "champion", "--set", iteration.id, "--json"])
    assert done.exit_code == 0, done.output
    assert f'"iteration_id": "{iteration.id}"' in done.output
    shown = runner.invoke(app, ["project", "alias", "drive", "champion"])
    assert iteration.id in shown.output
    refused = runner.invoke(app, ["project", "alias", "drive", "champion", "--set", foreign.id])
    assert refused.exit_code == 1 and "error: iteration" in refused.output
    assert get_alias(session, user, "drive", "champion").iteration_id == iteration.id


def test_api_lists_aliases_and_answers_404_for_someone_elses_project(
        session: Session, owner: tuple[User, str, Project]) -> None:
    user, key, drive = owner
    iteration = _iteration(session, user, drive)
    set_alias(session, user, "drive", "champion", iteration.id)
    _, grace_key = create_user(session, UserCreate(name="grace"))
    session.commit()
    client = TestClient(create_app())
    ok = client.get("/api/v1/projects/drive/aliases", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    assert [(a["name"], a["iteration_id"]) for a in ok.json()] == [("champion", iteration.id)]
    denied = client.get(f"/api/v1/projects/{drive.id}/aliases", headers={"Authorization": f"Bearer {grace_key}"})
    assert denied.status_code == 404
    assert client.get(f"/api/v1/projects/{drive.id}/aliases").status_code == 401
