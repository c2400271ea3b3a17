"""Learning is real: a short, seeded PPO run on Track-v0 drives much further than the untrained policy."""

from __future__ import annotations

from pathlib import Path

from flywheel.training.base import RunContext
from flywheel.training.envs import make_vec_env
from flywheel.training.evaluation import evaluate
from flywheel.training.templates import TEMPLATES, parse_config
from flywheel.training.templates.ppo import make_model


def test_short_ppo_run_improves_over_the_untrained_policy(tmp_path: Path) -> None:
    config = parse_config("ppo", {
        "env_kwargs": {"track": "generated-roads", "max_steps": 500},
        "total_timesteps": 20_480, "n_envs": 4, "n_steps": 512, "batch_size": 256, "seed": 0, "eval_episodes": 2,
    })
    untrained = make_model(config, make_vec_env(config.env_id, config.env_kwargs, n_envs=config.n_envs))
    before = evaluate(untrained, config.env_id, config.env_kwargs, episodes=2, seed=1_000_000, record=False)

    result = TEMPLATES["ppo"].run(config, RunContext(tmp_path))

    after = result.evaluation
    assert after.mean_return > before.mean_return + 150.0  # metres of progress in 25 s
    assert after.mean_return > 3 * max(before.mean_return, 1.0)
    assert after.task_metrics["mean_speed"] > 4.0
