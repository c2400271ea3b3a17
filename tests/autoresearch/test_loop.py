"""The autoresearch loop's bookkeeping: champion crowning and alias, failures, parallel trials, the database
mirror and prior, publishing to a (local bare) git remote.

Trials here run through the loop's trial-running path with either the job system's ``sleep`` kind
(``SleepJobTrials``: real queue, scheduler and worker processes, no training) or the in-process objective
hook (``FunctionTrials``); real training is in test_commands.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flywheel.autoresearch.history import ResultsFile
from flywheel.autoresearch.loop import AutoresearchLoop, LoopSettings
from flywheel.autoresearch.models import AutoresearchTrial
from flywheel.autoresearch.space import SearchSpace
from flywheel.autoresearch.store import RunMirror
from flywheel.autoresearch.trials import FunctionTrials, JobTrials, SleepJobTrials
from flywheel.errors import Conflict, InvalidInput
from flywheel.jobs.models import Job
from flywheel.platform.aliases import get_alias
from flywheel.platform.models import Project, User
from flywheel.store.engine import session_scope
from tests.autoresearch.conftest import remote_file, remote_log
from tests.autoresearch.objectives import quadratic

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _mirror(user: User, project: Project, folder: Path, template: str = "test") -> RunMirror:
    return RunMirror.open(user_id=user.id, project=project.id, results_dir=folder, template=template,
                          experiment="search", space={}, settings={})


def _sequence(values: list[float]) -> Any:
    it: Iterator[float] = iter(values)
    return lambda params: next(it)


def test_rewards_50_80_60_90_70_crown_trials_1_2_and_4_and_move_the_alias(
        project: Project, user: User, space: SearchSpace, tmp_path: Path) -> None:
    folder = tmp_path / "results"
    runner = SleepJobTrials(_sequence([50, 80, 60, 90, 70]), user_id=user.id, project=project.id,
                            experiment="search", timeout_s=60)
    mirror = _mirror(user, project, folder)
    lines: list[str] = []
    loop = AutoresearchLoop(space=space, runner=runner, results_dir=folder, mirror=mirror, out=lines.append,
                            settings=LoopSettings(trials=5, cooldown_s=0, poll_s=0.05), name="ar-test")
    assert loop.run() == "budget: 5 trials done"
    records = ResultsFile(folder / "results.jsonl").load()
    assert [(r.trial, r.mean_reward, r.champion) for r in records] == [
        (1, 50, True), (2, 80, True), (3, 60, False), (4, 90, True), (5, 70, False)]
    manifest = json.loads((folder / "models" / "champion" / "manifest.json").read_text())
    assert (manifest["trial"], manifest["reward"]) == (4, 90)
    with session_scope() as session:
        rows = session.scalars(select(AutoresearchTrial).order_by(AutoresearchTrial.number)).all()
        assert [(r.number, r.status, r.champion) for r in rows] == [
            (1, "ok", True), (2, "ok", True), (3, "ok", False), (4, "ok", True), (5, "ok", False)]
        jobs = {j.id: j for j in session.scalars(select(Job))}
        assert len(jobs) == 5 and {j.status for j in jobs.values()} == {"completed"}
        owner = session.get(User, user.id)
        assert get_alias(session, owner, "drive", "champion").iteration_id == rows[3].iteration_id
    assert sum("★ crowned" in line for line in lines) == 3
    assert sum("champion: trial" in line for line in lines) >= 5  # the running summary after every trial
    assert (folder / "plots" / "index.html").exists() and (folder / "results.log").exists()


def test_a_failing_trial_is_recorded_and_the_loop_goes_on(ar_home: Path, space: SearchSpace, tmp_path: Path) -> None:
    def objective(params: dict[str, Any]) -> float:
        if params["x"] > 0.5:
            raise RuntimeError("diverged")
        return quadratic(params)

    loop = AutoresearchLoop(space=space, runner=FunctionTrials(objective), results_dir=tmp_path / "r",
                            settings=LoopSettings(trials=8, cooldown_s=0, seed=3), out=lambda line: None)
    loop.run()
    records = ResultsFile(tmp_path / "r" / "results.jsonl").load()
    assert [r.trial for r in records] == list(range(1, 9))
    failed = [r for r in records if r.run_status == "failed"]
    assert failed and all(r.params["x"] > 0.5 and "diverged" in (r.reason or "") for r in failed)
    assert all(r.ok for r in records if r.params["x"] <= 0.5)


def test_workers_ask_batches_of_distinct_trials(ar_home: Path, space: SearchSpace, tmp_path: Path) -> None:
    seen: list[float] = []

    def objective(params: dict[str, Any]) -> float:
        seen.append(params["x"])
        return quadratic(params)

    loop = AutoresearchLoop(space=space, runner=FunctionTrials(objective), results_dir=tmp_path / "r",
                            settings=LoopSettings(trials=7, workers=3, cooldown_s=0), out=lambda line: None)
    loop.run()
    records = ResultsFile(tmp_path / "r" / "results.jsonl").load()
    assert sorted(r.trial for r in records) == list(range(1, 8))
    assert len(set(seen)) == 7


def test_cooldown_separates_trials(ar_home: Path, space: SearchSpace, tmp_path: Path) -> None:
    import time

    starts: list[float] = []

    def objective(params: dict[str, Any]) -> float:
        starts.append(time.monotonic())
        return 1.0

    AutoresearchLoop(space=space, runner=FunctionTrials(objective), results_dir=tmp_path / "r",
                     settings=LoopSettings(trials=3, cooldown_s=0.4), out=lambda line: None).run()
    assert len(starts) == 3 and all(b - a >= 0.4 for a, b in itertools.pairwise(starts))


def test_a_second_search_learns_from_the_first_through_the_database(
        project: Project, user: User, space: SearchSpace, tmp_path: Path) -> None:
    first = _mirror(user, project, tmp_path / "one")
    AutoresearchLoop(space=space, runner=FunctionTrials(quadratic), results_dir=tmp_path / "one", mirror=first,
                     settings=LoopSettings(trials=4, cooldown_s=0), out=lambda line: None).run()
    second = _mirror(user, project, tmp_path / "two")
    assert second.run_id != first.run_id
    assert second.write_prior(tmp_path / "two" / "prior_db.jsonl", "test") == 4
    other_template = _mirror(user, project, tmp_path / "three", template="other")
    assert other_template.write_prior(tmp_path / "three" / "prior_db.jsonl", "other") == 0
    loop = AutoresearchLoop(space=space, runner=FunctionTrials(quadratic), results_dir=tmp_path / "two",
                            mirror=second, prior=[tmp_path / "two" / "prior_db.jsonl"],
                            settings=LoopSettings(trials=1, cooldown_s=0), out=lambda line: None)
    loop.run()
    assert loop.ctl is not None and len(loop.ctl.prior) == 4
    assert "4 prior results" in (tmp_path / "two" / "results.log").read_text()


def test_results_are_pushed_every_n_trials_to_a_bare_repository(
        ar_home: Path, space: SearchSpace, tmp_path: Path, bare_repo: Path) -> None:
    lines: list[str] = []
    loop = AutoresearchLoop(space=space, runner=FunctionTrials(quadratic), results_dir=tmp_path / "r",
                            remote=str(bare_repo), out=lines.append,
                            settings=LoopSettings(trials=5, cooldown_s=0, push_every=2))
    loop.run()
    subjects = remote_log(bare_repo)
    assert [s.split(";")[0].split(",")[0] for s in subjects] == [
        "autoresearch: 5 trials", "autoresearch: 4 trials", "autoresearch: 2 trials"]
    pushed = [json.loads(line) for line in remote_file(bare_repo, "results.jsonl").splitlines()]
    assert [r["trial"] for r in pushed] == [1, 2, 3, 4, 5]
    assert json.loads(remote_file(bare_repo, "models/champion/manifest.json"))["trial"] == loop.keeper.champion.trial
    assert ".lock" not in subprocess_ls(bare_repo)
    assert sum("pushed" in line for line in lines) == 3


def subprocess_ls(bare: Path) -> list[str]:
    import subprocess

    return subprocess.run(["git", "--git-dir", str(bare), "ls-tree", "-r", "--name-only", "main"],
                          capture_output=True, text=True, check=True).stdout.splitlines()


def test_a_push_that_fails_does_not_stop_the_search(ar_home: Path, space: SearchSpace, tmp_path: Path) -> None:
    lines: list[str] = []
    loop = AutoresearchLoop(space=space, runner=FunctionTrials(quadratic), results_dir=tmp_path / "r",
                            remote=str(tmp_path / "no-such-remote.git"), out=lines.append,
                            settings=LoopSettings(trials=2, cooldown_s=0, push_every=1))
    assert loop.run() == "budget: 2 trials done"
    assert any("publishing failed (will retry)" in line for line in lines)


def test_two_controllers_cannot_share_a_results_folder(ar_home: Path, space: SearchSpace, tmp_path: Path) -> None:
    inner: list[str] = []

    def objective(params: dict[str, Any]) -> float:
        other = AutoresearchLoop(space=space, runner=FunctionTrials(quadratic), results_dir=tmp_path / "r",
                                 settings=LoopSettings(trials=1, cooldown_s=0), out=lambda line: None)
        try:
            other.run()
        except Conflict as exc:
            inner.append(exc.message)
        return 1.0

    AutoresearchLoop(space=space, runner=FunctionTrials(objective), results_dir=tmp_path / "r",
                     settings=LoopSettings(trials=1, cooldown_s=0), out=lambda line: None).run()
    assert inner and "another autoresearch" in inner[0]


def test_job_overrides_bound_total_timesteps_and_a_bad_value_fails_only_its_trial(
        project: Project, user: User, tmp_path: Path) -> None:
    from flywheel.autoresearch.trials import timesteps_bounds_check

    runner = JobTrials(user_id=user.id, project=project.id, experiment="dqn-search", template="dqn",
                       base={"eval_episodes": 2, "total_timesteps": 10**6}, timesteps=(500, 800))
    assert runner.overrides({"n_steer": 5})["total_timesteps"] == 800
    assert runner.overrides({"total_timesteps": 600})["total_timesteps"] == 600
    with pytest.raises(InvalidInput) as outside:
        timesteps_bounds_check(SearchSpace.from_yaml(
            "total_timesteps: {type: int, low: 100, high: 900}").params, 500, 800)
    assert outside.value.field == "total_timesteps"
    import numpy as np

    from flywheel.autoresearch.controller import Trial

    running = runner.start(Trial(number=1, params={"n_steer": 99}, x=np.zeros(1)))  # n_steer allows 2..21
    result = runner.poll(running)
    assert result is not None and result.status == "failed" and "n_steer" in result.reason
