"""The demo's training steps: real demonstrations, BC, BC→PPO and PPO from scratch, compared honestly."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from flywheel.demo import STEPS, create_demo_project, run_demo
from flywheel.training.demo_steps import TRAINING_STEPS


def test_training_steps_compare_bc_bc_ppo_and_ppo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=200)
    steps = STEPS[: STEPS.index(create_demo_project) + 1] + TRAINING_STEPS
    demo = run_demo(tmp_path / ".flywheel-demo", out=console, steps=steps)
    text = console.export_text()
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip().split()[:1]
            and line.split()[0] in ("bc", "bc_ppo", "ppo", "expert")}
    expert = float(demo.ids["expert return"])
    returns = {name: float(row[3]) for name, row in rows.items() if name != "expert"}
    assert set(returns) == {"bc", "bc_ppo", "ppo"}
    assert returns["bc"] > 0.5 * expert  # cloning the expert works from three demonstrations
    assert returns["bc_ppo"] > returns["ppo"]  # the same PPO budget goes further from the clone
    assert int(rows["bc"][1]) == 3  # BC used only the demonstration episodes
    for key in ("bc iteration", "bc_ppo iteration", "ppo iteration"):
        assert demo.ids[key].startswith("itr_")
