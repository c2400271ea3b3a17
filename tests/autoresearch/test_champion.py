"""Champion: the issue's sequence, re-evaluation guards against lucky runs, stable files, restore."""

from __future__ import annotations

import json

from flywheel.autoresearch.champion import ChampionKeeper
from flywheel.autoresearch.controller import Controller, Outcome
from flywheel.autoresearch.history import TrialRecord
from flywheel.autoresearch.space import SearchSpace


def rec(trial: int, reward: float | None, model_path: str | None = None) -> TrialRecord:
    return TrialRecord(trial=trial, params={"n": trial}, mean_reward=reward, model_path=model_path,
                       run_status="ok" if reward is not None else "failed")


def test_rewards_50_80_60_90_70_crown_trials_1_2_and_4(tmp_path) -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 9}})
    rewards = iter([50.0, 80.0, 60.0, 90.0, 70.0])
    ctl = Controller(space=space, seed=0, results=tmp_path / "r.jsonl", champion=ChampionKeeper(root=tmp_path))
    ctl.run(lambda p: next(rewards), n_trials=5)
    assert [r.trial for r in ctl.records if r.champion] == [1, 2, 4]
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["champion"] for r in rows] == [True, True, False, True, False]
    manifest = json.loads((tmp_path / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == 4 and manifest["reward"] == 90.0


def test_a_lucky_run_is_not_crowned_when_its_reevaluation_is_worse() -> None:
    truth = {1: 50.0, 2: 60.0, 3: 40.0, 4: 70.0}  # trial 3 looked like 100 once
    seen = []

    def reevaluate(r: TrialRecord) -> float:
        seen.append(r.trial)
        return truth[r.trial]

    keeper = ChampionKeeper(reevaluate=reevaluate)
    crowned = [keeper.consider(rec(t, v)) for t, v in [(1, 50.0), (2, 60.0), (3, 100.0), (4, 70.0)]]
    assert crowned == [True, True, False, True]
    assert seen == [1, 2, 3, 4]
    assert keeper.champion.trial == 4 and keeper.champion.reward == 70.0


def test_only_a_trial_that_beats_the_champion_is_reevaluated_and_failures_never_are() -> None:
    seen = []
    keeper = ChampionKeeper(reevaluate=lambda r: seen.append(r.trial) or r.mean_reward)
    for t, v in [(1, 5.0), (2, 3.0), (3, None), (4, 5.0), (5, 6.0)]:
        keeper.consider(rec(t, v))
    assert seen == [1, 5]


def test_model_is_copied_to_a_stable_path_with_a_manifest_and_restored(tmp_path) -> None:
    model = tmp_path / "runs" / "trial-2" / "model.zip"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights v2")
    keeper = ChampionKeeper(root=tmp_path / "results")
    keeper.consider(rec(2, 10.0, str(model)))
    folder = tmp_path / "results" / "models" / "champion"
    assert (folder / "model.zip").read_bytes() == b"weights v2"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"params", "reward", "trial", "timestamp", "model_path"} <= set(manifest)
    assert manifest["model_path"] == str(model) and manifest["sha256"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left
    model.write_bytes(b"overwritten later by the trainer")
    again = ChampionKeeper(root=tmp_path / "results")
    assert again.champion is not None and again.champion.trial == 2
    assert not again.consider(rec(3, 9.0))  # the restored champion still rules
    assert (folder / "model.zip").read_bytes() == b"weights v2"


def test_controller_passes_outcomes_and_restores_the_champion_after_restart(tmp_path) -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 9}})
    model = tmp_path / "m.zip"
    model.write_bytes(b"x")
    ctl = Controller(space=space, seed=0, results=tmp_path / "r.jsonl", champion=ChampionKeeper(root=tmp_path))
    ctl.run(lambda p: Outcome(mean_reward=float(p["n"]), std_reward=1.0, model_path=str(model)), n_trials=3)
    best = ctl.best
    again = Controller(space=space, seed=0, results=tmp_path / "r.jsonl", champion=ChampionKeeper(root=tmp_path))
    assert again.champion.champion.trial == best.trial


def test_memory_only_keeper_is_restored_from_the_results_without_reevaluating(tmp_path) -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 9}})
    calls = []

    def reevaluate(r: TrialRecord) -> float:
        calls.append(r.trial)
        return r.mean_reward - 1.0

    ctl = Controller(space=space, seed=0, results=tmp_path / "r.jsonl", champion=ChampionKeeper(reevaluate=reevaluate))
    ctl.run(lambda p: float(p["n"]), n_trials=4)
    n_calls, champ = len(calls), ctl.champion.champion
    again = Controller(space=space, seed=0, results=tmp_path / "r.jsonl",
                       champion=ChampionKeeper(reevaluate=reevaluate))
    assert len(calls) == n_calls
    assert again.champion.champion.trial == champ.trial and again.champion.champion.reward == champ.reward


def test_a_results_file_from_another_space_is_refused(tmp_path) -> None:
    import pytest

    from flywheel.errors import InvalidInput

    Controller(space=SearchSpace(params={"n": {"type": "int", "low": 1, "high": 9}}), seed=0,
               results=tmp_path / "r.jsonl").run(lambda p: 1.0, n_trials=2)
    with pytest.raises(InvalidInput, match="does not fit the search space"):
        Controller(space=SearchSpace(params={"lr": {"type": "float", "low": 0.1, "high": 1.0}}),
                   results=tmp_path / "r.jsonl")
