"""BC→PPO: fine-tuning starts from the clone (not from scratch), keeps it, and counts every episode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flywheel.errors import InvalidInput
from flywheel.training.base import RunContext, RunInputs
from flywheel.training.demos import record_demos
from flywheel.training.evaluation import evaluate
from flywheel.training.templates import TEMPLATES, parse_config

TRACK = {"track": "generated-roads", "max_steps": 300, "random_start": True}
TINY_PPO = {"n_envs": 2, "n_steps": 256, "batch_size": 128, "n_epochs": 4, "net_arch": [64, 64]}


def test_fine_tuning_starts_from_the_clone_and_keeps_it(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    demos = record_demos(tmp_path / "demos", "flywheel/Track-v0", TRACK, episodes=2, seed=0)
    config = parse_config("bc_ppo", {"env_kwargs": TRACK, "total_timesteps": 2048, "eval_every": 1024,
                                     "eval_episodes": 3, "bc_epochs": 60, "value_epochs": 20, **TINY_PPO})
    result = TEMPLATES["bc_ppo"].run(config, RunContext(tmp_path / "run", RunInputs([demos.root])))

    expert = evaluate("expert", "flywheel/Track-v0", TRACK, episodes=3, seed=1_000_000, record=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [m["eval/mean_return"] for m in lines if "eval/mean_return" in m and "charts/episodes" in m]
    assert curve[0] > 0.9 * expert.mean_return  # evaluated at PPO step 0: the clone, not a random network
    assert len(curve) >= 3 and min(curve) > 0.9 * expert.mean_return  # PPO kept it
    assert result.evaluation.mean_return > 0.9 * expert.mean_return
    assert any("losses/bc_loss" in m for m in lines) and any("losses/value_loss" in m for m in lines)
    # every environment step and episode counts: the demonstrations' and PPO's
    model = PPO.load(result.checkpoint, device="cpu")
    assert model.num_timesteps == 2048 and result.env_steps == 600 + 2048
    assert 2 + 2048 // 300 <= result.env_episodes <= 2 + 2048 // 300 + 2  # + the 2 envs' episodes under way


def test_a_bc_checkpoint_starts_the_ppo_template(tmp_path: Path) -> None:
    demos = record_demos(tmp_path / "demos", "flywheel/Track-v0", TRACK, episodes=1, seed=0)
    bc = TEMPLATES["bc"].run(parse_config("bc", {"env_kwargs": TRACK, "bc_epochs": 60, "eval_episodes": 1}),
                             RunContext(tmp_path / "bc", RunInputs([demos.root])))
    ppo_config = parse_config("ppo", {"env_kwargs": TRACK, "total_timesteps": 256, "eval_episodes": 1,
                                      "learning_rate": 1e-6, **TINY_PPO, "batch_size": 64})
    ppo = TEMPLATES["ppo"].run(ppo_config, RunContext(tmp_path / "ppo", RunInputs(init_checkpoint=bc.checkpoint)))
    assert ppo.evaluation.mean_return == pytest.approx(bc.evaluation.mean_return, rel=0.05)


def test_mismatched_dataset_is_refused_before_any_work(tmp_path: Path) -> None:
    demos = record_demos(tmp_path / "demos", "flywheel/Track-v0", {**TRACK, "n_rays": 4, "max_steps": 10},
                         episodes=1)
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["bc_ppo"].run(parse_config("bc_ppo", {"env_kwargs": TRACK}),
                                RunContext(tmp_path / "run", RunInputs([demos.root])))
    assert caught.value.field == "dataset.features.observation.state" and "[17]" in str(caught.value)
    assert not (tmp_path / "run").exists()
