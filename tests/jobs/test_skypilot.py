"""The SkyPilot runner: the task YAML (dry run, through the CLI), the refusal without `sky`, and the `sky`
command lines it runs — against a stand-in `sky` script on PATH that records its calls (no cloud here)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput
from flywheel.jobs.models import Job
from flywheel.jobs.runners import get_runner
from flywheel.jobs.runners.skypilot import SkyPilotRunner, cluster_name, torch_version
from flywheel.jobs.schemas import JobSubmit
from flywheel.jobs.submit import submit
from flywheel.platform.models import Iteration, User
from tests.cli.conftest import Cli
from tests.jobs.conftest import sleep_job, wait_for


@pytest.fixture
def no_sky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which there is no `sky`."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def cli(project: object, no_sky: None, monkeypatch: pytest.MonkeyPatch, session: Session, user: User) -> Cli:
    from flywheel.platform.users import hash_key

    user.api_key_hash = hash_key("fw_cli-key-of-ada")
    session.commit()
    monkeypatch.setenv("FLYWHEEL_API_KEY", "fw_cli-key-of-ada")
    monkeypatch.setenv("COLUMNS", "200")
    return Cli()


def _jobs(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Job)) or 0


def test_dry_run_writes_and_prints_the_task_yaml_and_queues_nothing(cli: Cli, session: Session) -> None:
    result = cli.ok("job", "submit", "--runner", "skypilot", "--dry-run", "--kind", "sleep", "-p", "jobs",
                    "-e", "cloud", "--gpu", "a100", "--spot", "--set", "seconds=5")
    task = yaml.safe_load(result.stdout)
    job_id = task["envs"]["FLYWHEEL_JOB_ID"]
    assert task["name"] == f"flywheel-{job_id}" and job_id.startswith("job_")
    assert task["resources"] == {"use_spot": True, "accelerators": "A100:1"}
    assert f"python -m flywheel.jobs.worker {job_id} --attempt 0" in task["run"]
    setup = [line for line in task["setup"].splitlines() if line.startswith("pip install")]
    assert setup[0].startswith(f"pip install --quiet torch=={torch_version()}")  # torch first, pinned
    assert set(task["secrets"]) == {"FLYWHEEL_DATABASE_URL", "FLYWHEEL_JOB_TOKEN"}
    assert all(value is None for value in task["secrets"].values())  # given at launch, never written
    assert (Path(task["workdir"]) / "flywheel" / "jobs" / "worker.py").is_file()
    written = Path(result.stderr.split("wrote ")[1].split(" for ")[0])
    assert yaml.safe_load(written.read_text()) == task
    assert written.name == f"{cluster_name(job_id, 0)}.yaml"
    assert "fwj_" not in written.read_text() and "sqlite:" not in written.read_text()
    assert _jobs(session) == 0 and session.scalar(select(func.count()).select_from(Iteration)) == 0


def test_dry_run_on_cpu_asks_for_cpus_and_on_demand(cli: Cli) -> None:
    task = yaml.safe_load(cli.ok("job", "submit", "--runner", "skypilot", "--dry-run", "--kind", "sleep",
                                 "-p", "jobs", "-e", "cloud").stdout)
    assert task["resources"] == {"use_spot": False, "cpus": "2+"}
    assert "download.pytorch.org/whl/cpu" in task["setup"]


def test_dry_run_still_validates_and_is_only_for_skypilot(cli: Cli, session: Session) -> None:
    assert "config.second" in cli.fails("job", "submit", "--runner", "skypilot", "--dry-run", "--kind", "sleep",
                                        "-p", "jobs", "-e", "cloud", "--set", "second=5").stderr
    assert "dry_run" in cli.fails("job", "submit", "--dry-run", "--kind", "sleep", "-p", "jobs", "-e", "c").stderr
    assert _jobs(session) == 0


def test_without_sky_a_skypilot_submission_is_refused_naming_the_runner(
    cli: Cli, no_sky: None, session: Session, user: User
) -> None:
    with pytest.raises(InvalidInput) as refused:
        submit(session, user, JobSubmit(kind="sleep", project="jobs", experiment="cloud", runner="skypilot",
                                        gpu_type="t4"))
    assert refused.value.field == "runner"
    assert "pip install 'skypilot[aws]'" in (refused.value.hint or "")
    session.rollback()
    failed = cli.fails("job", "submit", "--runner", "skypilot", "--kind", "sleep", "-p", "jobs", "-e", "cloud")
    assert "runner" in failed.stderr and "sky" in failed.stderr
    assert _jobs(session) == 0


STAND_IN = """#!/bin/sh
# A stand-in for the SkyPilot CLI: records each call, answers `sky queue` with the state in $DIR/state.
DIR="{dir}"
echo "$* token=${{FLYWHEEL_JOB_TOKEN:+set}} db=${{FLYWHEEL_DATABASE_URL:+set}}" >> "$DIR/calls"
case "$1" in
  queue)
    [ -f "$DIR/state" ] || exit 1
    echo "Job queue of current user on cluster $2"
    echo "ID  TASK  NAME  SUBMITTED  STARTED  DURATION  RESOURCES  STATUS  LOG"
    echo "1   -     flywheel  1 min ago  1 min ago  10s  1x[T4:1]  $(cat "$DIR/state")  ~/sky_logs/x" ;;
  status) echo "NAME  INFRA  RESOURCES  STATUS" ;;
  launch) echo "provisioning $3 (stand-in)"; sleep 30 ;;
esac
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_launch_poll_and_kill_run_the_sky_commands(project: object, session: Session, user: User,
                                                   tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sky = bin_dir / "sky"
    sky.write_text(STAND_IN.format(dir=tmp_path))
    sky.chmod(sky.stat().st_mode | stat.S_IXUSR)
    job = sleep_job(session, user, experiment="cloud", gpu_type="t4", spot=True)
    runner = SkyPilotRunner(sky=str(sky))
    log = tmp_path / "job.log"
    handle = runner.start(job, log_path=log)
    cluster = cluster_name(job.id, 0)
    assert handle["cluster"] == cluster and Path(handle["yaml"]).is_file()
    calls = tmp_path / "calls"
    wait_for(lambda: calls.exists() and "launch" in calls.read_text(), 10)
    assert calls.read_text().splitlines()[0] == (f"launch -c {cluster} {handle['yaml']} -y --down --secret "
                                                 "FLYWHEEL_DATABASE_URL --secret FLYWHEEL_JOB_TOKEN token=set db=set")
    wait_for(lambda: "provisioning" in log.read_text(), 10)  # the launcher's output goes to the job's log
    assert runner.poll(handle) is None  # launching: no queue yet
    (tmp_path / "state").write_text("RUNNING")
    assert runner.poll(handle) is None
    (tmp_path / "state").write_text("FAILED")
    failed = runner.poll(handle)
    assert failed is not None and failed.code == 1 and "failed" in failed.detail
    (tmp_path / "state").write_text("SUCCEEDED")
    assert runner.poll(handle).ok
    runner.kill(handle, graceful=True)
    runner.kill(handle)
    # Both commands run in the background, each in its own process: either may write its line first.
    wait_for(lambda: f"down {cluster} -y" in calls.read_text() and f"cancel {cluster} --all -y" in calls.read_text(),
             10)
    wait_for(lambda: not runner._launching(handle), 10)  # the launcher was stopped
    os.remove(tmp_path / "state")
    time.sleep(0.1)
    gone = runner.poll(handle)  # no queue, no cluster, no launcher: the job is gone
    assert gone is not None and "gone" in gone.detail


def test_the_runner_is_registered() -> None:
    assert isinstance(get_runner("skypilot"), SkyPilotRunner)
