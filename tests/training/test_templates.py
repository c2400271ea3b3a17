"""The template registry, config validation, and each RL template end to end on a tiny budget."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput
from flywheel.platform.templates import get_template
from flywheel.training.base import RunContext, RunInputs
from flywheel.training.envs import make_env
from flywheel.training.onnx_export import onnx_policy
from flywheel.training.templates import TEMPLATES, get_template_impl, parse_config, sync_registry
from flywheel.training.templates.common import code_version

TINY: dict[str, dict[str, Any]] = {
    "ppo": {"total_timesteps": 512, "n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2},
    "dqn": {"total_timesteps": 400, "learning_starts": 100, "target_update_interval": 100},
    "sac": {"total_timesteps": 300, "learning_starts": 100, "batch_size": 64},
}
COMMON = {"env_kwargs": {"max_steps": 100}, "eval_episodes": 2, "net_arch": [32, 32], "seed": 3}


def test_registry_lists_the_rl_templates() -> None:
    assert {"ppo", "dqn", "sac"} <= set(TEMPLATES)
    assert get_template_impl("dqn").config_model().n_steer == 5
    with pytest.raises(InvalidInput) as caught:
        get_template_impl("a2c")
    assert caught.value.field == "template" and "ppo" in caught.value.allowed


def test_unknown_config_key_names_the_field_and_the_allowed_keys() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config("ppo", {"learning_rat": 1e-3})
    assert caught.value.field == "config.learning_rat"
    assert "learning_rate" in caught.value.allowed and "n_steps" in caught.value.allowed


@pytest.mark.parametrize(("template", "key", "value", "allowed"), [
    ("ppo", "learning_rate", 0.0, "> 0"),
    ("ppo", "gamma", 1.5, "≤ 1"),
    ("ppo", "n_envs", 0, "≥ 1"),
    ("dqn", "n_steer", 1, "≥ 2"),
    ("sac", "tau", -0.1, "> 0"),
    ("ppo", "seed", -1, "≥ 0"),
])
def test_out_of_range_values_name_the_field_and_the_range(template: str, key: str, value: Any, allowed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config(template, {key: value})
    assert caught.value.field == f"config.{key}"
    assert allowed in caught.value.allowed and repr(value) in str(caught.value)


def test_cross_field_rules_name_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config("ppo", {"n_steps": 64, "n_envs": 1, "batch_size": 128})
    assert caught.value.field == "config.batch_size" and "64" in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        parse_config("ppo", {"env_id": "flywheel/Nope-v0"})
    assert caught.value.field == "config.env_id" and "flywheel/Track-v0" in caught.value.allowed


@pytest.mark.parametrize("template_id", ["ppo", "dqn", "sac"])
def test_template_runs_end_to_end(template_id: str, tmp_path: Path) -> None:
    from stable_baselines3 import DQN, PPO, SAC

    config = parse_config(template_id, {**TINY[template_id], **COMMON})
    reports: list[int] = []
    ctx = RunContext(tmp_path, report=lambda step, metrics: reports.append(step))
    writers = tensorboard_writers()
    result = TEMPLATES[template_id].run(config, ctx)
    assert tensorboard_writers() == writers  # the run closed its TensorBoard writer

    assert result.checkpoint == tmp_path / "model.zip" and result.onnx == tmp_path / "model.onnx"
    assert result.env_steps == config.total_timesteps and result.env_episodes >= 1
    model = {"PPO": PPO, "DQN": DQN, "SAC": SAC}[result.algorithm].load(result.checkpoint, device="cpu")
    assert model.num_timesteps == config.total_timesteps
    obs = np.stack([ep.columns["observation.state"] for ep in result.evaluation.episodes])[0]
    np.testing.assert_allclose(onnx_policy(result.onnx)(obs), model.predict(obs, deterministic=True)[0], atol=1e-5)

    assert json.loads((tmp_path / "config.json").read_text()) == config.model_dump(mode="json")
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = {k for line in lines for k in line}
    assert {"charts/episodes", "eval/mean_return", "eval/mean_abs_cte"} <= keys
    assert all("charts/episodes" in line for line in lines if "charts/fps" in line)  # every SB3 log dump
    assert any(k.startswith("losses/") for k in keys) and any(k.startswith("charts/ep_") for k in keys)
    assert lines[-1]["eval/mean_return"] == pytest.approx(result.evaluation.mean_return)
    assert reports == [line["step"] for line in lines]
    assert any((tmp_path / "tensorboard").iterdir())
    assert len(result.evaluation.episodes) == 2 and result.evaluation.features["observation.state"]["shape"] == [13]


def tensorboard_writers() -> int:
    """TensorBoard event-file writer threads alive in this process."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    return sum(isinstance(thread, _AsyncWriterThread) for thread in threading.enumerate())


def test_runs_repeat_with_the_same_seed(tmp_path: Path) -> None:
    config = parse_config("ppo", {**TINY["ppo"], **COMMON})
    a = TEMPLATES["ppo"].run(config, RunContext(tmp_path / "a"))
    b = TEMPLATES["ppo"].run(config, RunContext(tmp_path / "b"))
    assert a.evaluation.returns == b.evaluation.returns


def test_should_stop_and_init_checkpoint(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    config = parse_config("ppo", {**TINY["ppo"], **COMMON, "total_timesteps": 2048})
    first = TEMPLATES["ppo"].run(config, RunContext(tmp_path / "first"))
    # start from the first run's checkpoint and stop at once: the saved network is the initial one, untouched
    ctx = RunContext(tmp_path / "second", inputs=RunInputs(init_checkpoint=first.checkpoint),
                     should_stop=lambda: True)
    second = TEMPLATES["ppo"].run(config, ctx)
    assert second.env_steps < config.total_timesteps
    before = PPO.load(first.checkpoint, device="cpu").policy.state_dict()
    after = PPO.load(second.checkpoint, device="cpu").policy.state_dict()
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)
    assert second.evaluation.returns == first.evaluation.returns

    bigger = parse_config("ppo", {**TINY["ppo"], **COMMON, "net_arch": [64]})
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["ppo"].run(bigger, RunContext(tmp_path / "third", inputs=RunInputs(init_checkpoint=first.checkpoint)))
    assert caught.value.field == "inputs.init_checkpoint"


def test_dqn_refuses_a_task_it_cannot_discretise(tmp_path: Path) -> None:
    config = parse_config("dqn", {"env_id": "flywheel/ReachyLookAt-v0"})
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["dqn"].run(config, RunContext(tmp_path))
    assert caught.value.field == "env.action_space"
    assert not (tmp_path / "model.zip").exists()


def test_sync_registry_registers_schema_defaults_and_commit(session: Session) -> None:
    assert set(sync_registry(session)) == set(TEMPLATES)
    row = get_template(session, "dqn")
    assert row.default_config["n_steer"] == 5 and "n_throttle" in row.config_schema["properties"]
    assert row.git_commit == code_version() and row.git_commit


def test_make_env_of_a_config_matches_its_eval_features() -> None:
    config = parse_config("dqn", {})
    env = make_env(config.env_id, config.env_kwargs, discretize=config.discretize)
    assert env.action_space.n == config.n_steer * config.n_throttle
