"""The Ray runner against a real local Ray (one per test session, on 127.0.0.1): a trivial job and a tiny
real PPO job complete with their outputs stored, cancel kills the job, a job whose Ray actor dies is
detected, and a new runner (a restarted scheduler) finds a job again from its JSON handle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from flywheel.jobs.cancel import cancel_job
from flywheel.jobs.models import Job
from flywheel.jobs.runners import get_runner
from flywheel.jobs.runners.ray import RayRunner
from flywheel.jobs.schemas import JobSubmit
from flywheel.jobs.submit import submit
from flywheel.platform.models import Asset, Iteration, User
from flywheel.store.engine import session_scope
from tests.jobs.conftest import job_state, running_scheduler, wait_for

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TINY_PPO = {"total_timesteps": 128, "n_envs": 1, "n_steps": 64, "batch_size": 64, "n_epochs": 1,
            "net_arch": [16], "eval_episodes": 1, "env_kwargs": {"max_steps": 50}}


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray for the whole test session (bound to 127.0.0.1, no dashboard, no auth)."""
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def ray_jobs(ray_cluster: Any, project: object) -> Any:
    return ray_cluster


def _submit(session: Session, user: User, **data: Any) -> Job:
    job = submit(session, user, JobSubmit(project="jobs", runner="ray", **data))
    session.commit()
    return job


def _ended(job_id: str, timeout: float) -> Job:
    return wait_for(lambda: (j := job_state(job_id)).status in ("completed", "failed", "cancelled") and j, timeout)


def _running(job_id: str) -> Job:
    """The job once its worker runs; fails at once, with the job's error and log, if it ends first."""
    def check() -> Job | None:
        job = job_state(job_id)
        if job.status in ("completed", "failed", "cancelled"):
            log = Path(job.log_path).read_text()[-2000:] if job.log_path and Path(job.log_path).exists() else ""
            raise AssertionError(f"job ended before it was seen running: {job.status} ({job.reason}) "
                                 f"{job.error}\n{log}")
        return job if job.status == "running" and job.pid else None

    return wait_for(check, 60)


def _actor_exists(ray: Any, name: str) -> bool:
    try:
        ray.get_actor(name, namespace="flywheel")
    except ValueError:
        return False
    return True


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except OSError:
        return True


def test_a_trivial_job_completes_on_ray_and_its_actor_is_released(
    ray_jobs: Any, session: Session, user: User
) -> None:
    job_id = _submit(session, user, kind="sleep", experiment="ray", overrides={"seconds": 0.3, "steps": 3}).id
    with running_scheduler(runner="ray", slots=2):
        job = _ended(job_id, 60)
        assert (job.status, job.step) == ("completed", 3), job.error
        name = job.handle["ray_actor"]
        wait_for(lambda: not _actor_exists(ray_jobs, name), 20)  # read by the scheduler, then gone
    assert json.loads(json.dumps(job.handle)) == job.handle and job.handle["namespace"] == "flywheel"
    log = Path(job.log_path).read_text()
    assert f"job {job_id} running (attempt 0" in log and f"job {job_id} completed" in log
    assert job.pid != os.getpid() and job.log_asset_id is not None
    with session_scope() as s:
        assert s.get(Iteration, job.iteration_id).status == "completed"


def test_a_tiny_ppo_job_trains_on_ray_with_its_outputs_stored(ray_jobs: Any, session: Session, user: User) -> None:
    job_id = _submit(session, user, template="ppo", experiment="ppo-on-ray", overrides=TINY_PPO).id
    with running_scheduler(runner="ray", slots=1):
        job = _ended(job_id, 120)
    assert job.status == "completed", job.error + Path(job.log_path).read_text()[-2000:]
    assert job.step >= TINY_PPO["total_timesteps"] and job.eval_ids
    with session_scope() as s:
        names = {a.name for a in s.query(Asset).filter(Asset.iteration_id == job.iteration_id)}
        assert {"model.zip", "model.onnx", "config.json"} <= names
        assert set(job.output_asset_ids) <= {a.id for a in s.query(Asset)}
        assert "mean return" in s.get(Iteration, job.iteration_id).notes


def test_cancel_kills_a_ray_job_and_its_actor(ray_jobs: Any, session: Session, user: User) -> None:
    job_id = _submit(session, user, kind="sleep", experiment="ray", overrides={"seconds": 60, "steps": 600}).id
    with running_scheduler(runner="ray", slots=1):
        running = _running(job_id)
        cancel_job(session, user, job_id)
        session.commit()
        wait_for(lambda: _gone(running.pid), 10)
        wait_for(lambda: not _actor_exists(ray_jobs, running.handle["ray_actor"]), 10)  # ray.kill is asynchronous
    job = job_state(job_id)
    assert (job.status, job.reason) == ("cancelled", "cancelled by user") and job.log_asset_id


def test_a_job_whose_ray_actor_dies_is_failed_by_the_scheduler(
    ray_jobs: Any, session: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_JOB_DEAD_AFTER_S", "600")  # detection must come from Ray, not from silence
    job_id = _submit(session, user, kind="sleep", experiment="ray", overrides={"seconds": 60, "steps": 600}).id
    with running_scheduler(runner="ray", slots=1):
        running = _running(job_id)
        actor_pid = int(Path(f"/proc/{running.pid}/stat").read_text().split(") ")[1].split()[1])  # its parent
        os.kill(actor_pid, signal.SIGKILL)  # the Ray worker hosting the job dies (OOM killer, lost node)
        job = _ended(job_id, 30)
    assert (job.status, job.reason) == ("failed", "dead")
    assert "the Ray actor running the job" in job.error  # seen by the runner: "died" or, once unnamed, "gone"
    wait_for(lambda: _gone(running.pid), 10)  # the job's process died with its actor


def test_a_new_runner_finds_the_job_from_its_json_handle(ray_jobs: Any, session: Session, user: User) -> None:
    job_id = _submit(session, user, kind="sleep", experiment="ray", overrides={"seconds": 60, "steps": 600}).id
    with running_scheduler(runner="ray", slots=1):
        running = _running(job_id)
        handle = json.loads(json.dumps(running.handle))
        fresh = RayRunner()  # what a restarted scheduler has: the handle, nothing in memory
        assert fresh.poll(handle) is None
        fresh.kill(handle, graceful=True)  # SIGTERM: the worker stops and ends the job itself
        job = _ended(job_id, 30)
    assert (job.status, job.reason) == ("failed", "preempted")
    assert isinstance(get_runner("ray"), RayRunner)


def test_a_process_without_ray_does_not_start_one_to_poll_or_kill_a_local_rays_job(flywheel_home: Path) -> None:
    code = ("import ray; from flywheel.jobs.runners.ray import RayRunner; r = RayRunner(); "
            "h = {'ray_actor': 'flywheel-job-job_x-0', 'namespace': 'flywheel', 'address': 'local'}; "
            "r.kill(h); r.release(h); print(r.poll(h), ray.is_initialized())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["None", "False"], done.stderr  # the API cancelling: heartbeats tell the worker
