"""Provenance chains: eval → iteration → experiment → project and eval → job → template."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy.orm import Session

from flywheel.datasets.models import Dataset
from flywheel.errors import InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.platform import assets, experiments, iterations, projects
from flywheel.platform.lineage import lineage
from flywheel.platform.models import User
from flywheel.platform.schemas import AssetCreate, ExperimentCreate, IterationCreate, ProjectCreate
from flywheel.platform.templates import register_template
from flywheel.store import new_id


class Cfg(BaseModel):
    lr: float = 0.1


def test_eval_lineage_reaches_project_job_and_template(session: Session, user: User) -> None:
    register_template(session, template_id="ppo", description="PPO", config_model=Cfg, git_commit="c0ffee")
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    e = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo-run"))
    it = iterations.create_iteration(session, user, e.id, IterationCreate())
    job = Job(
        id=new_id("job"),
        owner_id=user.id,
        experiment_id=e.id,
        iteration_index=it.index,
        template_id="ppo",
        status="completed",
    )
    session.add(job)
    session.flush()
    it.job_id = job.id
    ev = Dataset(
        id=new_id("dst"),
        owner_id=user.id,
        name="eval-0",
        generated_by_experiment_id=e.id,
        generated_by_iteration_id=it.id,
        generated_by_job_id=job.id,
    )
    session.add(ev)
    session.commit()
    result = lineage(session, user, ev.id)
    assert [(link.kind, link.id) for link in result.chain] == [
        ("eval", ev.id),
        ("iteration", it.id),
        ("experiment", e.id),
        ("project", project.id),
    ]
    assert [(link.kind, link.id) for link in result.produced_by] == [("job", job.id), ("template", "ppo")]
    assert "c0ffee" in result.produced_by[1].name


def test_asset_and_iteration_lineage(session: Session, user: User) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    e = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="bc"))
    it = iterations.create_iteration(session, user, e.id, IterationCreate())
    a = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, iteration_id=it.id, name="m"), [b"x"])
    session.commit()
    assert [link.kind for link in lineage(session, user, a.id).chain] == ["asset", "iteration", "experiment", "project"]
    assert [link.kind for link in lineage(session, user, it.id).chain] == ["iteration", "experiment", "project"]
    assert lineage(session, user, it.id).produced_by == []


def test_unknown_and_foreign_ids(session: Session, user: User, other_user: User) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    session.commit()
    with pytest.raises(InvalidInput, match="id"):
        lineage(session, user, "banana")
    with pytest.raises(NotFound):
        lineage(session, other_user, project.id)
