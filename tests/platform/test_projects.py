"""Projects through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.datasets.models import Dataset
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.platform import experiments, iterations, projects
from flywheel.platform.models import Experiment, Iteration, Project, User
from flywheel.platform.schemas import (
    ExperimentCreate,
    IterationCreate,
    ProjectCreate,
    ProjectUpdate,
    ShowcaseRef,
)
from flywheel.store import new_id


def make_eval(session: Session, user: User, experiment: Experiment, iteration: Iteration, name: str) -> Dataset:
    ev = Dataset(
        id=new_id("dst"),
        owner_id=user.id,
        name=name,
        generated_by_experiment_id=experiment.id,
        generated_by_iteration_id=iteration.id,
    )
    session.add(ev)
    session.flush()
    return ev


def test_create_list_show_by_id_or_name(session: Session, user: User) -> None:
    first = projects.create_project(session, user, ProjectCreate(name="look-at", description="# Look\nat things"))
    projects.create_project(session, user, ProjectCreate(name="drive"))
    session.commit()
    assert [p.name for p in projects.list_projects(session, user)] == ["look-at", "drive"]
    from flywheel.platform import access

    assert access.project(session, user, "look-at").id == first.id
    assert access.project(session, user, first.id).description == "# Look\nat things"


def test_duplicate_name_is_a_conflict_and_changes_nothing(session: Session, user: User) -> None:
    projects.create_project(session, user, ProjectCreate(name="look-at"))
    session.commit()
    with pytest.raises(Conflict, match="look-at"):
        projects.create_project(session, user, ProjectCreate(name="look-at"))
    session.rollback()
    assert len(projects.list_projects(session, user)) == 1


def test_bad_names_are_refused_naming_the_field() -> None:
    for bad in ["", "a/b", "x" * 201, "tab\there"]:
        with pytest.raises(ValidationError, match="name"):
            ProjectCreate(name=bad)
    with pytest.raises(ValidationError, match="colour"):
        ProjectCreate.model_validate({"name": "ok", "colour": "red"})


def test_other_users_projects_are_invisible(session: Session, user: User, other_user: User) -> None:
    mine = projects.create_project(session, user, ProjectCreate(name="look-at"))
    session.commit()
    assert projects.list_projects(session, other_user) == []
    with pytest.raises(NotFound):
        projects.update_project(session, other_user, mine.id, ProjectUpdate(description="mine now"))
    with pytest.raises(NotFound):
        projects.delete_project(session, other_user, mine.id)
    # Same name is fine for another user.
    projects.create_project(session, other_user, ProjectCreate(name="look-at"))


def test_edit_name_and_description(session: Session, user: User) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    projects.create_project(session, user, ProjectCreate(name="taken"))
    projects.update_project(session, user, project.id, ProjectUpdate(name="look-at-v2", description="new"))
    session.commit()
    assert (project.name, project.description) == ("look-at-v2", "new")
    with pytest.raises(Conflict, match="taken"):
        projects.update_project(session, user, project.id, ProjectUpdate(name="taken"))


def _project_with_evals(session: Session, user: User, count: int) -> tuple[Project, list[Dataset]]:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    exp = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo"))
    it = iterations.create_iteration(session, user, exp.id, IterationCreate())
    return project, [make_eval(session, user, exp, it, f"eval-{i}") for i in range(count)]


def test_showcases_at_most_five_from_own_evals(session: Session, user: User) -> None:
    project, evals = _project_with_evals(session, user, 6)
    refs = [ShowcaseRef(eval_id=e.id) for e in evals]
    projects.update_project(session, user, project.id, ProjectUpdate(showcases=refs[:5]))
    session.commit()
    assert [s.eval_id for s in project.showcases] == [e.id for e in evals[:5]]
    with pytest.raises(Conflict, match="at most 5"):
        projects.update_project(session, user, project.id, ProjectUpdate(showcases=refs))
    session.rollback()
    session.refresh(project)
    assert len(project.showcases) == 5

    other = projects.create_project(session, user, ProjectCreate(name="other"))
    with pytest.raises(InvalidInput, match=r"showcases\.eval_id"):
        projects.update_project(session, user, other.id, ProjectUpdate(showcases=refs[:1]))


def test_delete_cascades_to_experiments_iterations_and_evals(session: Session, user: User) -> None:
    project, evals = _project_with_evals(session, user, 2)
    projects.update_project(session, user, project.id, ProjectUpdate(showcases=[ShowcaseRef(eval_id=evals[0].id)]))
    session.commit()
    projects.delete_project(session, user, project.id)
    session.commit()
    assert session.scalars(select(Experiment)).all() == []
    assert session.scalars(select(Iteration)).all() == []
    assert session.scalars(select(Dataset)).all() == []


def test_delete_refused_while_a_job_runs_unless_forced(session: Session, user: User) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    exp = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo"))
    session.add(Job(id=new_id("job"), owner_id=user.id, experiment_id=exp.id, iteration_index=0, status="running"))
    session.commit()
    with pytest.raises(Conflict, match="1 job") as caught:
        projects.delete_project(session, user, project.id)
    assert "--force" in (caught.value.hint or "")
    session.rollback()
    assert len(projects.list_projects(session, user)) == 1
    projects.delete_project(session, user, project.id, force=True)
    session.commit()
    assert projects.list_projects(session, user) == []
