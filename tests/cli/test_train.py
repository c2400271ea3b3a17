"""`flywheel template`, `flywheel train` and `flywheel eval`."""

from __future__ import annotations

import json
from pathlib import Path

from flywheel.settings import get_settings
from tests.cli.conftest import Cli

TINY = ["--set", "total_timesteps=256", "--set", "n_envs=1", "--set", "n_steps=128", "--set", "batch_size=64",
        "--set", "n_epochs=1", "--set", "eval_episodes=2", "--set", 'env_kwargs={"max_steps": 60}']


def test_template_list_and_show(cli: Cli, api_key: str) -> None:
    ids = [t["id"] for t in cli.json("template", "list")]
    assert {"ppo", "dqn", "sac"} <= set(ids)
    shown = cli.json("template", "show", "ppo")
    assert shown["default_config"]["learning_rate"] == 3e-4 and "n_steps" in shown["config_schema"]["properties"]
    assert "allowed" in cli.fails("template", "show", "nope").stderr


def test_train_then_eval_on_another_track(cli: Cli, api_key: str) -> None:
    cli.ok("project", "create", "drive")
    out = cli.json("train", "--template", "ppo", "--project", "drive", "--experiment", "baseline", *TINY)
    assert out["index"] == 0 and set(out["assets"]) >= {"model.zip", "model.onnx"}
    assert len(out["evaluation"]["returns"]) == 2 and out["eval_dataset_id"].startswith("dst_")
    onnx = Path(get_settings().home) / "runs" / out["iteration_id"] / "model.onnx"
    assert onnx.is_file()
    result = json.loads(cli.ok("eval", "--model", out["assets"]["model.onnx"], "--env", "flywheel/Track-v0",
                               "--track", "mountain", "--train-track", "generated-roads", "--episodes", "2",
                               "--env-kwarg", "max_steps=60", "--json").stdout)
    assert result["track"] == "mountain" and len(result["returns"]) == 2
    assert result["generalisation_gap"] == result["train_track"]["mean_return"] - result["mean_return"]
    human = cli.ok("eval", "--model", str(onnx), "--env", "flywheel/Track-v0", "-n", "1",
                   "--env-kwarg", "max_steps=30").stdout
    assert "episode   0: return" in human and "mean return" in human


def test_bad_train_requests_exit_1_naming_the_field(cli: Cli, api_key: str) -> None:
    cli.ok("project", "create", "drive")
    base = ["train", "--template", "ppo", "--project", "drive", "--experiment", "baseline"]
    assert "config.learning_rat" in cli.fails(*base, "--set", "learning_rat=0.1").stderr
    assert "config.n_steps" in cli.fails(*base, "--set", "n_steps=0").stderr
    assert "template" in cli.fails("train", "--template", "ppo9", "--project", "drive", "--experiment", "x").stderr
    assert "model" in cli.fails("eval", "--model", "nope.zip", "--env", "flywheel/Track-v0").stderr
    assert cli.json("experiment", "list", "drive") == []
