"""`flywheel autoresearch` end to end with real (tiny) DQN training through the job queue, and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flywheel.autoresearch.history import ResultsFile
from flywheel.autoresearch.models import AutoresearchRun, AutoresearchTrial
from flywheel.cli import app
from flywheel.jobs.models import Job
from flywheel.platform.aliases import get_alias
from flywheel.platform.models import User
from flywheel.platform.projects import create_project
from flywheel.platform.schemas import ProjectCreate, UserCreate
from flywheel.platform.users import create_user
from flywheel.store.engine import session_scope
from tests.autoresearch.conftest import remote_file, remote_log

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

DQN_SPACE = ("n_steer: {type: int, low: 3, high: 7}\n"
             "learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n")
TINY = ["--config", "learning_starts=50", "--config", 'env_kwargs={"max_steps": 60}', "--config", "net_arch=[16]"]


@pytest.fixture
def cli_user(ar_home: Path, session: Session, monkeypatch: pytest.MonkeyPatch) -> User:
    owner, key = create_user(session, UserCreate(name="researcher"))
    create_project(session, owner, ProjectCreate(name="drive"))
    session.commit()
    monkeypatch.setenv("FLYWHEEL_API_KEY", key)
    return owner


def test_two_real_dqn_trials_crown_a_champion_set_the_alias_and_push(
        cli_user: User, session: Session, tmp_path: Path, bare_repo: Path) -> None:
    import torch

    torch.set_num_threads(1)
    space = tmp_path / "space.yaml"
    space.write_text(DQN_SPACE)
    folder = tmp_path / "results"
    result = CliRunner().invoke(app, [
        "autoresearch", "--project", "drive", "--template", "dqn", "--space", str(space), "--trials", "2",
        "--min-timesteps", "300", "--max-timesteps", "300", "--eval-episodes", "2", "--champion-episodes", "2",
        "--cooldown", "0", "--timeout", "240", "--push-every", "2", "--remote", str(bare_repo),
        "--results", str(folder), "--json", *TINY])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["stop_reason"] == "budget: 2 trials done" and summary["trials"] == 2
    records = ResultsFile(folder / "results.jsonl").load()
    assert [r.trial for r in records] == [1, 2] and all(r.ok and r.std_reward is not None for r in records)
    assert records[0].champion  # the first successful trial is always crowned
    with session_scope() as s:
        jobs = s.scalars(select(Job).order_by(Job.created_at)).all()
        assert [(j.template_id, j.status, j.config["total_timesteps"], j.config["eval_episodes"]) for j in jobs] == [
            ("dqn", "completed", 300, 2)] * 2
        assert [j.config["n_steer"] for j in jobs] == [r.params["n_steer"] for r in records]
        for job, record in zip(jobs, records, strict=True):  # the reward is the job's final evaluation
            assert record.mean_reward == pytest.approx(job.metrics["eval/mean_return"])
        rows = s.scalars(select(AutoresearchTrial).order_by(AutoresearchTrial.number)).all()
        assert [r.job_id for r in rows] == [j.id for j in jobs]
        run = s.scalars(select(AutoresearchRun)).one()
        assert run.status == "stopped" and run.template == "dqn"
        champion_trial = next(r for r in rows if r.number == summary["champion"]["trial"])
        owner = s.get(User, cli_user.id)
        assert get_alias(s, owner, "drive", "champion").iteration_id == champion_trial.iteration_id
        assert summary["champion_iteration_id"] == champion_trial.iteration_id
    manifest = json.loads((folder / "models" / "champion" / "manifest.json").read_text())
    assert (folder / "models" / "champion" / "model.zip").stat().st_size > 1000
    assert manifest["trial"] == summary["champion"]["trial"]
    assert remote_log(bare_repo) and json.loads(remote_file(bare_repo, "models/champion/manifest.json")) == manifest


def test_bad_input_names_the_field_and_runs_nothing(cli_user: User, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("n_layers: {type: int, low: 1, high: 3}\n")
    runner = CliRunner()
    unknown = runner.invoke(app, ["autoresearch", "--project", "drive", "--template", "dqn", "--space", str(space)])
    assert unknown.exit_code == 1 and "n_layers" in unknown.output and "n_steer" in unknown.output
    space.write_text("total_timesteps: {type: int, low: 100, high: 90000}\n")
    outside = runner.invoke(app, ["autoresearch", "--project", "drive", "--template", "dqn", "--space", str(space)])
    assert outside.exit_code == 1 and "--max-timesteps" in outside.output
    space.write_text(DQN_SPACE)
    missing = runner.invoke(app, ["autoresearch", "--project", "nope", "--template", "dqn", "--space", str(space)])
    assert missing.exit_code == 1 and "project nope not found" in missing.output
    no_template = runner.invoke(app, ["autoresearch", "--project", "drive", "--space", str(space)])
    assert no_template.exit_code == 1 and "--template" in no_template.output
    with session_scope() as s:
        assert s.scalars(select(Job)).first() is None and s.scalars(select(AutoresearchRun)).first() is None


def test_an_objective_function_runs_in_process_and_a_rerun_resumes(cli_user: User, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("x: {type: float, low: 0.0, high: 1.0}\n")
    args = ["autoresearch", "--project", "drive", "--space", str(space), "--objective",
            "tests.autoresearch.objectives:quadratic", "--cooldown", "0", "--results", str(tmp_path / "r")]
    first = CliRunner().invoke(app, [*args, "--trials", "3"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--trials", "5"])
    assert again.exit_code == 0, again.output
    assert "resumed: 3 trials already done" in again.output
    assert [r.trial for r in ResultsFile(tmp_path / "r" / "results.jsonl").load()] == [1, 2, 3, 4, 5]
