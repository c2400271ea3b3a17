"""History: append-only crash-safe JSONL, torn lines, resume without re-running, prior files, the text log."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time

import pytest

from flywheel.autoresearch.controller import Controller
from flywheel.autoresearch.history import ResultsFile, TrialRecord, load_prior
from flywheel.autoresearch.space import SearchSpace
from flywheel.errors import InvalidInput

SPACE = {"n": {"type": "int", "low": 1, "high": 200}, "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}


def reward(p: dict) -> float:
    return -abs(p["n"] - 120) / 10.0


def test_records_have_every_field_of_the_issue(tmp_path) -> None:
    ctl = Controller(space=SearchSpace(params=SPACE), seed=0, results=tmp_path / "results.jsonl")
    t = ctl.ask()
    ctl.tell(t, 3.0, std_reward=0.5, model_path="m.zip")
    row = json.loads((tmp_path / "results.jsonl").read_text())
    assert {"trial", "timestamp", "params", "mean_reward", "std_reward", "model_path", "champion", "elapsed_sec",
            "run_status"} <= set(row)
    assert row["params"] == t.params and row["champion"] is True and row["run_status"] == "ok"


def test_resume_after_a_crash_loads_everything_and_does_not_rerun(tmp_path) -> None:
    path = tmp_path / "results.jsonl"
    space = SearchSpace(params=SPACE)
    first = Controller(space=space, seed=0, results=path)
    for _ in range(5):
        t = first.ask()
        first.tell(t, reward(t.params))
    first.ask()  # asked, never told: the "crash" happens while it runs
    with path.open("a") as fh:
        fh.write('{"trial": 6, "timestamp": "2026-')  # and tears the last line

    calls = []

    def objective(p: dict) -> float:
        calls.append(p)
        return reward(p)

    again = Controller(space=space, seed=0, results=path)
    assert again.n_completed == 5 and again.results.torn_lines == 1
    assert again.run(objective, n_trials=8) == "budget: 8 trials done"
    assert len(calls) == 3  # only the three missing trials ran
    records = ResultsFile(path).load()
    assert [r.trial for r in records] == [1, 2, 3, 4, 5, 6, 7, 8]
    done = [space.key(r.params) for r in records]
    assert len(set(done)) == 8  # nothing completed was proposed again
    assert Controller(space=space, seed=0, results=path).run(objective, n_trials=8).startswith("budget")
    assert len(calls) == 3


def test_a_torn_line_is_ended_before_the_next_append(tmp_path) -> None:
    f = ResultsFile(tmp_path / "r.jsonl")
    f.append(TrialRecord(trial=1, params={"n": 1}, mean_reward=1.0))
    with f.path.open("a") as fh:
        fh.write('{"trial": 2, "par')
    f.append(TrialRecord(trial=2, params={"n": 2}, mean_reward=2.0))
    assert [r.trial for r in f.load()] == [1, 2] and f.torn_lines == 1


def test_a_json_line_that_is_not_a_record_is_an_error_naming_the_line(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"trial": 1, "params": {}}\n{"hello": 1}\n')
    with pytest.raises(InvalidInput, match="line 2"):
        ResultsFile(path).load()


def test_prior_files_in_several_shapes(tmp_path) -> None:
    space = SearchSpace(params=SPACE)
    sweep = tmp_path / "sweep.jsonl"
    sweep.write_text("\n".join([
        json.dumps({"n": 10, "lr": 0.01, "reward": 1.0}),
        json.dumps({"config": {"n": 20, "lr": 0.01}, "value": 2.0}),
        json.dumps({"trial": 1, "params": {"n": 30, "lr": 0.01}, "mean_reward": 3.0, "run_status": "ok"}),
        json.dumps({"trial": 2, "params": {"n": 40, "lr": 0.01}, "mean_reward": None, "run_status": "failed"}),
        json.dumps({"n": 999, "lr": 0.01, "reward": 1.0}),
        json.dumps({"lr": 0.01, "reward": 1.0}),
        '{"n": 5, "lr"',
    ]))
    obs, skipped = load_prior([sweep], space)
    assert [v for _, v in obs] == [1.0, 2.0, 3.0] and skipped == 4
    with pytest.raises(InvalidInput):
        load_prior([tmp_path / "missing.jsonl"], space)


def test_the_text_log_is_updated_after_every_trial(tmp_path) -> None:
    ctl = Controller(space=SearchSpace(params=SPACE), seed=0, results=tmp_path / "results.jsonl")
    reason = ctl.run(reward, n_trials=4)
    text = (tmp_path / "results.log").read_text()
    for i in range(1, 5):
        assert f"trial {i} reward" in text
    assert "top candidates" in text and f"search stopped: {reason}" in text


def test_hundred_fast_trials_no_lost_or_duplicated_record(tmp_path) -> None:
    path = tmp_path / "results.jsonl"
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 1000}})
    ctl = Controller(space=space, seed=0, results=path, n_startup=100)  # random proposals: the I/O is under test
    ctl.run(lambda p: float(p["n"] % 7), n_trials=100)
    lines = path.read_text().splitlines()
    assert len(lines) == 100
    assert [json.loads(x)["trial"] for x in lines] == list(range(1, 101))
    assert len({json.dumps(json.loads(x)["params"]) for x in lines}) == 100


def _sweep(path: str) -> None:  # runs in a child that is killed with SIGKILL
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 1000}})
    ctl = Controller(space=space, seed=0, results=path, n_startup=10_000)
    ctl.run(lambda p: (time.sleep(0.002), float(p["n"]))[1], n_trials=10_000)


def test_kill_9_mid_sweep_then_resume(tmp_path) -> None:
    path = tmp_path / "results.jsonl"
    proc = mp.get_context("fork").Process(target=_sweep, args=(str(path),))
    proc.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not path.exists() or len(path.read_bytes().splitlines()) < 20):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    done = ResultsFile(path).load()
    assert len(done) >= 20 and [r.trial for r in done] == list(range(1, len(done) + 1))
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 1000}})
    ctl = Controller(space=space, seed=0, results=path, n_startup=10_000)
    ctl.run(lambda p: float(p["n"]), n_trials=len(done) + 5)
    after = ResultsFile(path).load()
    assert [r.trial for r in after] == list(range(1, len(done) + 6))


def test_parallel_workers_telling_from_threads_lose_nothing(tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "results.jsonl"
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 1000}})
    ctl = Controller(space=space, seed=0, results=path, n_startup=1000)
    trials = ctl.ask(n=40)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda t: ctl.tell(t, float(t.params["n"])), trials))
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(r["trial"] for r in rows) == list(range(1, 41)) and ctl.pending == {}
