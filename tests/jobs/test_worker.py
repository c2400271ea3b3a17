"""The worker in its own process: crashes, time limits, cancels, preemption and the spend limit.

Preemption and the spend limit run the real PPO template (tiny network, a budget far larger than the
test lets it use): stopping makes it save its checkpoint, which the job keeps as an asset.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from flywheel.jobs.cancel import cancel_job
from flywheel.jobs.models import Job
from flywheel.jobs.runners import get_runner
from flywheel.jobs.schemas import JobSubmit
from flywheel.jobs.submit import submit
from flywheel.platform.models import Asset, Iteration, User
from flywheel.store.engine import session_scope
from tests.jobs.conftest import job_state, running_scheduler, sleep_job, wait_for

TINY_PPO = {"total_timesteps": 1_000_000, "n_envs": 1, "n_steps": 64, "batch_size": 64, "n_epochs": 1,
            "net_arch": [16], "eval_episodes": 1, "env_kwargs": {"max_steps": 50}}


def _ended(job_id: str, timeout: float = 60) -> Job:
    return wait_for(lambda: (j := job_state(job_id)).status in ("completed", "failed", "cancelled") and j, timeout)


def _log(job: Job) -> str:
    return Path(job.log_path).read_text()


def _assets(job: Job) -> dict[str, list[str]]:
    with session_scope() as session:
        return {a.name: list(a.tags) for a in session.query(Asset).filter(Asset.iteration_id == job.iteration_id)}


def _iteration_status(job: Job) -> str:
    with session_scope() as session:
        return session.get(Iteration, job.iteration_id).status


@pytest.mark.parametrize(("crash", "says"), [("exception", "RuntimeError: sleep job told to crash"),
                                              ("exit", "exit code 3"),
                                              ("kill", "signal 9 (SIGKILL) (out of memory?)")])
def test_a_crashing_job_fails_with_its_log_kept(
    project: object, session: Session, user: User, crash: str, says: str
) -> None:
    job_id = sleep_job(session, user, seconds=0.4, steps=4, crash=crash).id
    follower = sleep_job(session, user).id
    with running_scheduler(slots=1):
        job = _ended(job_id)
        assert _ended(follower).status == "completed"  # resources released: the next job runs
    assert (job.status, job.reason) == ("failed", "crashed")
    assert says in job.error
    assert "crashing on purpose" in _log(job)
    assert "job-" + job.id + ".log" in _assets(job)
    assert _iteration_status(job) == "failed"


def test_a_job_over_its_time_limit_stops_and_fails_with_reason_timeout(
    project: object, session: Session, user: User
) -> None:
    job_id = sleep_job(session, user, seconds=60, steps=600, max_runtime_s=1.0).id
    with running_scheduler(slots=1):
        job = _ended(job_id, 30)
    assert (job.status, job.reason) == ("failed", "timeout")
    assert job.elapsed_s < 10


def test_cancelling_a_running_job_kills_its_process_group(project: object, session: Session, user: User) -> None:
    job_id = sleep_job(session, user, seconds=60, steps=600).id
    with running_scheduler(slots=1):
        running = wait_for(lambda: (j := job_state(job_id)).status == "running" and j.pid and j, 30)
        cancel_job(session, user, job_id)
        session.commit()
        wait_for(lambda: not Path(f"/proc/{running.pid}").exists()
                 or Path(f"/proc/{running.pid}/stat").read_text().split(") ")[1][0] == "Z", 10)
    job = job_state(job_id)
    assert (job.status, job.reason) == ("cancelled", "cancelled by user")
    assert job.log_asset_id is not None and _iteration_status(job) == "cancelled"


def test_a_cancel_wins_over_the_scheduler_seeing_the_killed_process_exit(
    project: object, session: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill happens before the job is marked cancelled; however long that takes, the scheduler (which
    sees the process end within 0.1 s) must not fail the job as crashed in between."""
    runner = get_runner("local")
    real_kill = runner.kill

    def slow_kill(handle: dict, *, graceful: bool = False) -> None:
        real_kill(handle, graceful=graceful)
        time.sleep(1.0)  # ten scheduler ticks between the kill and the end of the cancel

    monkeypatch.setattr(runner, "kill", slow_kill)
    job_id = sleep_job(session, user, seconds=60, steps=600).id
    with running_scheduler(slots=1):
        wait_for(lambda: (j := job_state(job_id)).status == "running" and j.pid and j, 30)
        cancel_job(session, user, job_id)
        session.commit()
        time.sleep(0.5)  # the scheduler's late attempt to end the job must lose, quietly
    job = job_state(job_id)
    assert (job.status, job.reason, job.error) == ("cancelled", "cancelled by user", "")
    assert _iteration_status(job) == "cancelled"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_preempts_a_training_job_which_keeps_its_checkpoint(
    project: object, session: Session, user: User
) -> None:
    job_id = submit(session, user, JobSubmit(template="ppo", project="jobs", experiment="ppo",
                                             overrides=TINY_PPO, gpu_type="t4", spot=True)).id
    session.commit()
    with running_scheduler(slots=1):
        running = wait_for(lambda: (j := job_state(job_id)).status == "running" and j.step > 0 and j, 90)
        os.kill(running.pid, signal.SIGTERM)  # what a spot reclaim sends
        job = _ended(job_id, 90)
    assert (job.status, job.reason) == ("failed", "preempted")
    assets = _assets(job)
    assert "checkpoint" in assets["model.zip"] and job.output_asset_ids
    assert 0 < job.step < TINY_PPO["total_timesteps"]
    assert job.final_cost_usd is not None and job.final_cost_usd > 0
    assert _iteration_status(job) == "failed"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reaching_the_spend_limit_mid_job_stops_it_with_a_checkpoint_and_starts_nothing_else(
    project: object, session: Session, user: User
) -> None:
    first = submit(session, user, JobSubmit(template="ppo", project="jobs", experiment="ppo", overrides=TINY_PPO,
                                            gpu_type="h100")).id
    waiting = sleep_job(session, user, seconds=0.1).id
    session.commit()
    with running_scheduler(slots=1, per_user=1):
        wait_for(lambda: (j := job_state(first)).status == "running" and j.step > 0 and j.current_cost_usd > 0, 90)
        with session_scope() as other:  # the spend crosses the limit (here: the limit is lowered below it)
            other.execute(update(User).where(User.id == user.id).values(spend_limit_usd=0.0001))
        job = _ended(first, 90)
        time.sleep(1.0)  # a few scheduler ticks
        follower = job_state(waiting)
    assert (job.status, job.reason) == ("cancelled", "spend limit")
    assert "checkpoint" in _assets(job)["model.zip"]
    assert (follower.status, follower.reason, follower.started_at) == ("cancelled", "spend limit", None)
    assert _iteration_status(job) == "cancelled"
