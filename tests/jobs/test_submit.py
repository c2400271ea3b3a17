"""Submission: everything is validated before anything is queued; the estimate is checked against the limit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.jobs.schemas import JobSubmit
from flywheel.jobs.submit import submit
from flywheel.platform.models import Iteration, User


def _counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Job)) or 0,
            session.scalar(select(func.count()).select_from(Iteration)) or 0)


def _train(**fields: object) -> JobSubmit:
    return JobSubmit(**{"template": "ppo", "project": "jobs", "experiment": "baseline", **fields})


def test_a_train_job_is_queued_with_its_iteration_config_and_template_commit(
    project: object, session: Session, user: User
) -> None:
    job = submit(session, user, _train(overrides={"total_timesteps": 5000, "learning_rate": 1e-3},
                                       gpu_type="t4", spot=True, notes="first"))
    session.commit()
    iteration = session.get(Iteration, job.iteration_id)
    assert (job.status, job.kind, job.iteration_index, iteration.job_id, iteration.status) == (
        "queued", "train", 0, job.id, "queued")
    assert job.config["learning_rate"] == 1e-3 and job.config["total_timesteps"] == 5000
    assert job.config["n_steps"] == 512  # the template default is part of the full config
    assert job.overrides == {"total_timesteps": 5000, "learning_rate": 1e-3}
    assert len(job.template_commit) > 0 and job.price_per_hour_usd == 0.11
    assert job.estimated_cost_usd == pytest.approx(0.11 * (5000 / 1000 + 30) / 3600)


@pytest.mark.parametrize(("fields", "error", "field"), [
    ({"template": "nope"}, InvalidInput, "template"),
    ({"overrides": {"learning_rat": 0.1}}, InvalidInput, "config.learning_rat"),
    ({"overrides": {"learning_rate": -1}}, InvalidInput, "config.learning_rate"),
    ({"overrides": {"env_id": "flywheel/Nope-v0"}}, InvalidInput, "config.env_id"),
    ({"dataset_ids": ["missing"]}, NotFound, None),
    ({"gpu_type": "tpu"}, InvalidInput, "gpu_type"),
    ({"runner": "mars"}, InvalidInput, "runner"),
])
def test_a_bad_submission_is_refused_and_queues_nothing(
    project: object, session: Session, user: User, fields: dict, error: type, field: str | None
) -> None:
    before = _counts(session)
    with pytest.raises(error) as caught:
        submit(session, user, _train(**fields))
    session.rollback()
    if field is not None:
        assert caught.value.field == field
    assert _counts(session) == before


def test_a_submission_whose_estimate_crosses_the_limit_is_refused_with_the_numbers(
    project: object, session: Session, user: User
) -> None:
    user.spend_limit_usd = 1.0
    user.spend_usd = 0.9
    session.commit()
    with pytest.raises(Conflict) as caught:  # 1 h (+30 s start) of an H100 on demand
        submit(session, user, JobSubmit(kind="sleep", project="jobs", experiment="q", overrides={"seconds": 3600},
                                        gpu_type="h100"))
    session.rollback()
    message = caught.value.message
    assert "$7.0382" in message and "3630 s of h100" in message and "$0.9000" in message and "$1.00" in message
    assert _counts(session) == (0, 0)
    cheap = submit(session, user, JobSubmit(kind="sleep", project="jobs", experiment="q",
                                            overrides={"seconds": 10}, gpu_type="t4"))
    assert cheap.status == "queued"


def test_a_sleep_job_names_its_bad_config_key(project: object, session: Session, user: User) -> None:
    with pytest.raises(InvalidInput) as caught:
        submit(session, user, JobSubmit(kind="sleep", project="jobs", experiment="q", overrides={"secs": 1}))
    assert caught.value.field == "config.secs"


def test_another_users_project_is_not_found(project: object, session: Session, other_user: User) -> None:
    with pytest.raises(NotFound):
        submit(session, other_user, _train())
