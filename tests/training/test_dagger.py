"""DAgger: learner-visited states labelled by a pluggable labeller beat plain BC on the same episode budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flywheel.errors import InvalidInput
from flywheel.training.base import RunContext, RunInputs
from flywheel.training.demos import record_demos
from flywheel.training.envs import expert_for
from flywheel.training.templates import TEMPLATES, parse_config
from flywheel.training.templates.dagger import DAggerTemplate

TRACK = {"track": "mountain", "max_steps": 300, "random_start": True}
BUDGET = 2  # environment episodes for each method


def test_dagger_reaches_the_bar_on_the_hairpins_with_two_episodes(tmp_path: Path) -> None:
    """The stated bar: with 2 episodes (1 expert-driven, 1 learner-driven) DAgger drives ≥ 85 % of the
    expert's distance on the mountain track and no worse than BC on 2 expert episodes (minus 5 %).
    (Measured, seeds 1 and 2: BC 91.2 / 90.0, DAgger 91.7 / 89.8, expert 95.8 / 96.0 metres.)"""
    import gymnasium as gym

    from flywheel.training.evaluation import evaluate

    fit = {"env_kwargs": TRACK, "bc_epochs": 60, "eval_episodes": 4, "seed": 1}
    demos = record_demos(tmp_path / "demos", "flywheel/Track-v0", TRACK, episodes=BUDGET, seed=1)
    bc = TEMPLATES["bc"].run(parse_config("bc", {**fit, "value_pretrain": False}),
                             RunContext(tmp_path / "bc", RunInputs([demos.root])))
    config = parse_config("dagger", {**fit, "iterations": BUDGET, "episodes_per_iteration": 1})
    dagger = TEMPLATES["dagger"].run(config, RunContext(tmp_path / "dagger"))

    expert = evaluate("expert", "flywheel/Track-v0", TRACK, episodes=4, seed=1_000_001, record=False)
    box = gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32), seed=0)
    rand = evaluate(lambda obs: box.sample(), "flywheel/Track-v0", TRACK, episodes=4, seed=1_000_001, record=False)
    assert dagger.env_episodes == bc.env_episodes == BUDGET
    assert dagger.env_steps == BUDGET * 300  # every rollout step counts
    assert dagger.evaluation.mean_return > 0.85 * expert.mean_return
    assert dagger.evaluation.mean_return > 4 * max(rand.mean_return, 1.0)
    assert dagger.evaluation.mean_return > 0.95 * bc.evaluation.mean_return
    lines = [json.loads(line) for line in (tmp_path / "dagger" / "metrics.jsonl").read_text().splitlines()]
    assert [m["charts/beta"] for m in lines if "charts/beta" in m] == [1.0, 0.5]  # round 1: the learner drives too


class CountingLabeller:
    """The expert, answering only every other step (a human who skips states), counting its calls."""

    def __init__(self, env: Any) -> None:
        self.expert = expert_for(env)
        self.calls = 0
        self.resets = 0
        self.closed = 0

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed += 1

    def __call__(self, obs: np.ndarray) -> Any:
        self.calls += 1
        action = self.expert(obs)  # once per step, before env.step, as the protocol says
        return action if self.calls % 2 else None


def test_the_labeller_is_pluggable_and_the_counts_are_honest(tmp_path: Path) -> None:
    made: list[CountingLabeller] = []

    def factory(env: Any) -> CountingLabeller:
        made.append(CountingLabeller(env))
        return made[-1]

    config = parse_config("dagger", {"env_kwargs": {**TRACK, "max_steps": 50}, "iterations": 2,
                                     "episodes_per_iteration": 2, "bc_epochs": 5, "eval_episodes": 1})
    result = DAggerTemplate(labeller=factory).run(config, RunContext(tmp_path))
    labeller = made[0]
    assert result.env_episodes == 4 == labeller.resets
    assert labeller.closed == 1  # closed once, when the run ended
    assert result.env_steps == labeller.calls  # one label request per environment step, no more, no less
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    sizes = [json.loads(line)["charts/aggregate_size"] for line in lines if "charts/aggregate_size" in line]
    assert sizes[-1] == pytest.approx((labeller.calls + 1) // 2)  # unlabelled states are not aggregated


def test_the_labeller_is_closed_when_the_run_fails(tmp_path: Path) -> None:
    made: list[CountingLabeller] = []

    def crash(obs: np.ndarray) -> Any:
        raise RuntimeError("the labeller's operator walked away")

    def factory(env: Any) -> CountingLabeller:
        made.append(CountingLabeller(env))
        made[-1].expert = crash
        return made[-1]

    config = parse_config("dagger", {"env_kwargs": {**TRACK, "max_steps": 50}, "iterations": 1,
                                     "episodes_per_iteration": 1, "bc_epochs": 1, "eval_episodes": 1})
    with pytest.raises(RuntimeError, match="walked away"):
        DAggerTemplate(labeller=factory).run(config, RunContext(tmp_path))
    assert made[0].closed == 1


def test_dagger_refuses_bad_seed_datasets_before_any_work(tmp_path: Path) -> None:
    demos = record_demos(tmp_path / "demos", "flywheel/ReachyLookAt-v0", {"episode_steps": 10}, episodes=1)
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["dagger"].run(parse_config("dagger", {"env_kwargs": TRACK}),
                                RunContext(tmp_path / "run", RunInputs([demos.root])))
    assert caught.value.field == "dataset.features.observation.state"
    assert not (tmp_path / "run").exists()
