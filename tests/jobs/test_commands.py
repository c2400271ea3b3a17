"""`flywheel job …`, `flywheel worker` and `flywheel train --queue`, through the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.jobs.conftest import running_scheduler, wait_for


@pytest.fixture
def cli(jobs_home: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("COLUMNS", "200")
    runner = Cli()
    runner.ok("user", "create", "ada")
    runner.ok("project", "create", "drive")
    return runner


def test_submit_list_show_logs_and_cancel(cli: Cli) -> None:
    job = cli.json("job", "submit", "--kind", "sleep", "-p", "drive", "-e", "queue", "--set", "seconds=0.2",
                   "--set", "steps=2")
    assert job["status"] == "queued"
    doomed = cli.json("job", "submit", "--kind", "sleep", "-p", "drive", "-e", "queue", "--set", "seconds=60")
    assert "cancelled" in cli.ok("job", "cancel", doomed["id"]).stdout.lower()
    with running_scheduler(slots=1):
        wait_for(lambda: cli.json("job", "show", job["id"])["status"] == "completed", 60)
    assert f"job {job['id']} completed" in cli.ok("job", "logs", job["id"]).stdout
    followed = cli.ok("job", "logs", job["id"], "--follow")
    assert f"{job['id']} completed, cost $0.0000" in followed.stderr
    shown = cli.ok("job", "show", job["id"]).stdout
    assert "completed" in shown and "provisioning" in shown and "step 2" in shown
    listed = cli.json("job", "list")
    assert {(j["id"], j["status"]) for j in listed} == {(job["id"], "completed"), (doomed["id"], "cancelled")}


def test_errors_are_two_lines(cli: Cli) -> None:
    cli.fails("job", "show", "job_missing")
    cli.fails("job", "submit", "--kind", "sleep", "-p", "drive", "-e", "q", "--gpu", "tpu")
    result = cli.fails("job", "submit", "-t", "ppo", "-p", "drive", "-e", "q", "--set", "learning_rat=1")
    assert "config.learning_rat" in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_train_through_the_queue_runs_the_real_template_and_fills_the_iteration(cli: Cli) -> None:
    result = cli.ok("train", "--queue", "-t", "ppo", "-p", "drive", "-e", "baseline",
                    "--set", "total_timesteps=256", "--set", "n_envs=1", "--set", "n_steps=64",
                    "--set", "batch_size=64", "--set", "n_epochs=1", "--set", "net_arch=[16]",
                    "--set", "eval_episodes=1", "--set", 'env_kwargs={"max_steps": 50}')
    assert "completed, cost $0.0000" in result.stderr
    [job] = cli.json("job", "list")
    assert job["status"] == "completed" and len(job["output_asset_ids"]) >= 3 and job["eval_ids"]
    iteration = cli.json("iteration", "show", job["iteration_id"])
    assert iteration["status"] == "completed" and iteration["job_id"] == job["id"]


def test_flywheel_worker_runs_jobs_and_stops_on_sigterm(cli: Cli) -> None:
    job = cli.json("job", "submit", "--kind", "sleep", "-p", "drive", "-e", "queue")
    worker = subprocess.Popen([sys.executable, "-m", "flywheel.cli", "worker", "--slots", "1"],
                              stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        wait_for(lambda: cli.json("job", "show", job["id"])["status"] == "completed", 60)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and b"1 slot(s)" in err
