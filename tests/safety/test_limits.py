"""The safety layer: limits from the robot description, config overrides, validate, clip, rate limits, counters."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import flywheel.envs  # noqa: F401
from flywheel.errors import InvalidInput
from flywheel.safety.config import SafetyConfig, load_safety_config, parse_safety_config
from flywheel.safety.limits import ActionDimension, SafetyLayer, describe_actions
from flywheel.training.templates import parse_config


@pytest.fixture(scope="module")
def head() -> gym.Env:
    return gym.make("flywheel/ReachyLookAt-v0")


def test_limits_come_from_the_robot_description(head: gym.Env) -> None:
    dims = {d.name: d for d in describe_actions(head)}
    assert {n: (round(d.low, 6), round(d.high, 6), d.unit) for n, d in dims.items()} == {
        "roll": (-30.0, 30.0, "deg"), "pitch": (-45.0, 45.0, "deg"), "yaw": (-45.0, 45.0, "deg"),
        "z": (-0.02, 0.02, "m"),
    }
    car = describe_actions(gym.make("flywheel/Track-v0"))
    assert [(d.name, d.low, d.high) for d in car] == [("steer", -1.0, 1.0), ("throttle", 0.0, 1.0)]
    motors_env = gym.make("flywheel/ReachyLookAt-v0", action_mode="motors")
    motors = describe_actions(motors_env)
    model = motors_env.unwrapped.model
    assert [d.name for d in motors][:2] == ["yaw_body", "stewart_1"]
    np.testing.assert_allclose([d.low for d in motors], model.ctrl_low)
    np.testing.assert_allclose([d.high for d in motors], model.ctrl_high)
    layer = SafetyLayer(motors)  # -1 and +1 map onto each actuator's ctrlrange
    np.testing.assert_allclose(layer.to_physical(-np.ones(7)), model.ctrl_low)
    np.testing.assert_allclose(layer.to_physical(np.ones(7)), model.ctrl_high)


def test_the_robot_limits_hold_without_a_config(head: gym.Env) -> None:
    layer = SafetyLayer.from_env(head)
    assert layer.validate([1.0, -1.0, 1.0, -1.0]) == []
    (v,) = layer.validate([0.0, 1.2, 0.0, 0.0])
    assert (v.dimension, v.kind, round(v.value, 6), v.limit, v.unit) == ("pitch", "range", 54.0, (-45.0, 45.0), "deg")


def test_validate_names_the_dimension_the_value_and_the_limit(head: gym.Env) -> None:
    layer = SafetyLayer.from_env(head, {"limits": {"pitch": [-20, 20], "roll": [-10, 10]}})
    found = layer.validate([0.5, 0.6, 0.0, 0.0])  # roll 15°, pitch 27°
    assert [str(v) for v in found] == [
        "roll = 15 deg is outside [-10, 10] deg",
        "pitch = 27 deg is outside [-20, 20] deg",
    ]
    assert found[1].to_dict() == {"dimension": "pitch", "kind": "range", "value": pytest.approx(27.0),
                                  "limit": [-20.0, 20.0], "unit": "deg"}
    assert layer.validate([0.3, 0.4, 0.0, 0.0]) == []  # 9°, 18°: inside
    assert layer.stats.actions == 0  # validate changes nothing


def test_clip_returns_the_nearest_action_inside_the_limits() -> None:
    dims = [ActionDimension("steer", -1, 1), ActionDimension("throttle", 0, 1)]
    layer = SafetyLayer(dims, {"limits": {"throttle": [0, 0.5], "steer": [-0.8, 0.8]}})
    np.testing.assert_allclose(layer.clip([0.9, 0.7]), [0.8, 0.5])
    np.testing.assert_allclose(layer.clip([-2.0, -1.0]), [-0.8, 0.0])
    np.testing.assert_allclose(layer.clip([0.1, 0.2]), [0.1, 0.2])  # inside: unchanged
    assert layer.validate(layer.clip([5.0, 5.0])) == []


def test_rate_limit_is_checked_from_the_previous_action_and_clipped() -> None:
    dims = [ActionDimension("yaw", -45, 45, "deg", scale=45)]
    layer = SafetyLayer(dims, {"rate_limits": {"yaw": 3.0}})
    (v,) = layer.validate([0.2])  # from rest (0°) to 9° in one step
    assert (v.kind, round(v.value, 6), v.limit) == ("rate", 9.0, 3.0)
    assert str(v) == "yaw changed by 9 deg in one step (limit 3 deg)"
    angles = [float(layer.to_physical(layer.apply([1.0]).action)[0]) for _ in range(20)]
    steps = np.diff([0.0, *angles])
    assert np.allclose(steps[:15], 3.0, atol=1e-4) and np.allclose(steps[15:], 0.0)  # ramps at the limit to 45°
    # the 15th request (42° -> 45°) is within the limit
    assert layer.stats.violations["yaw.rate"] == 14 and angles[-1] == pytest.approx(45.0, abs=1e-3)
    assert layer.validate([1.0]) == []  # holding still is fine
    layer.reset()  # a new episode starts from rest again
    assert [v.kind for v in layer.validate([1.0])] == ["rate"]


def test_every_violation_is_counted_and_recorded_in_the_episode() -> None:
    layer = SafetyLayer([ActionDimension("throttle", 0, 1)], {"limits": {"throttle": [0, 0.5]}})
    for a in [0.1, 0.9, 0.2, 0.7, 0.3]:
        layer.apply([a])
    assert layer.stats.to_dict() == {"actions": 5, "violating_actions": 2, "violation_rate": 0.4,
                                     "violations": {"throttle.range": 2}}
    assert [(e["step"], e["value"]) for e in layer.episode] == [(1, 0.9), (3, 0.7)]
    layer.reset()
    assert layer.episode == [] and layer.stats.actions == 5  # the counters span episodes


def test_monitor_mode_counts_but_changes_nothing() -> None:
    layer = SafetyLayer([ActionDimension("throttle", 0, 1)], {"limits": {"throttle": [0, 0.5]}, "mode": "monitor"})
    step = layer.apply([0.9])
    assert step.action.tolist() == [pytest.approx(0.9)] and len(step.violations) == 1
    assert layer.stats.violating_actions == 1


def test_non_finite_actions_are_violations_and_become_the_safe_action() -> None:
    car = SafetyLayer.from_env(gym.make("flywheel/Track-v0"))
    (v,) = car.validate([0.2, np.nan])
    assert (v.dimension, v.kind) == ("throttle", "finite")
    np.testing.assert_allclose(car.clip([0.2, np.nan]), [0.2, 0.0])


def test_a_non_finite_component_does_not_hide_the_others_violations() -> None:
    layer = SafetyLayer([ActionDimension("steer", -1, 1), ActionDimension("throttle", 0, 1)],
                        {"limits": {"throttle": [0, 0.5]}, "rate_limits": {"steer": 0.2}, "mode": "monitor"})
    found = {(v.dimension, v.kind) for v in layer.apply([np.inf, 0.9]).violations}
    assert found == {("steer", "finite"), ("throttle", "range")}
    found = {(v.dimension, v.kind) for v in layer.apply([0.9, np.nan]).violations}
    assert found == {("steer", "rate"), ("throttle", "finite")}  # steer's rate is checked from its last finite value
    assert layer.stats.violations == {"steer.finite": 1, "throttle.range": 1, "steer.rate": 1, "throttle.finite": 1}


def test_safe_action_is_no_throttle_for_the_car_and_hold_for_the_head(head: gym.Env) -> None:
    car = SafetyLayer.from_env(gym.make("flywheel/Track-v0"))
    assert car.safe_action([0.4, 0.9]).tolist() == [0.0, 0.0]
    layer = SafetyLayer.from_env(head)
    np.testing.assert_allclose(layer.safe_action([0.1, -0.2, 0.3, 0.0]), [0.1, -0.2, 0.3, 0.0], atol=1e-6)


# --- bad input: InvalidInput naming the field and the allowed values, nothing changed ---------------------


@pytest.mark.parametrize(
    ("config", "field", "allowed"),
    [
        ({"limits": {"gear": [0, 1]}}, "limits.gear", ["roll", "pitch", "yaw", "z"]),
        ({"rate_limits": {"speed": 1.0}}, "rate_limits.speed", ["roll", "pitch", "yaw", "z"]),
        ({"limits": {"pitch": [20, -20]}}, "limits.pitch", "low <= high"),
        ({"rate_limits": {"yaw": -1.0}}, "rate_limits.yaw", "> 0"),
        ({"rate_limits": {"yaw": 0}}, "rate_limits.yaw", "> 0"),
        ({"limits": {"pitch": [-60, 20]}}, "limits.pitch", "within [-45, 45] deg"),
        ({"mode": "panic"}, "mode", ["enforce", "monitor"]),
        ({"limit": {"pitch": [0, 1]}}, "limit", ["limits", "mode", "penalty_weight", "rate_limits"]),
    ],
)
def test_bad_config_names_the_field_and_the_allowed_values(head: gym.Env, config: dict, field: str,
                                                           allowed: object) -> None:
    with pytest.raises(InvalidInput) as err:
        SafetyLayer.from_env(head, config)
    assert err.value.field == field
    if isinstance(allowed, str):
        assert allowed in str(err.value.allowed)
    else:
        assert err.value.allowed == allowed


def test_a_bad_yaml_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "safety.yaml"
    text = "limits:\n  pitch: [20, -20]\nrate_limits:\n  yaw: 3\n"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=r"limits\.pitch"):
        load_safety_config(path)
    assert path.read_text() == text
    path.write_text("limits:\n  pitch: [-20, 20]\nrate_limits:\n  yaw: 3\npenalty_weight: 2\n")
    config = load_safety_config(path)
    assert config == SafetyConfig(limits={"pitch": (-20, 20)}, rate_limits={"yaw": 3.0}, penalty_weight=2.0)
    with pytest.raises(InvalidInput) as err:
        load_safety_config(tmp_path / "missing.yaml")
    assert err.value.field == "safety_config"


def test_a_template_config_refuses_a_bad_safety_config() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_config("ppo", {"safety": True, "safety_config": {"rate_limits": {"steer": -0.5}}})
    assert err.value.field == "config.safety_config" and "steer" in err.value.message
    config = parse_config("ppo", {"safety": True, "safety_config": {"limits": {"throttle": [0, 0.5]}}})
    assert config.safety_config == parse_safety_config({"limits": {"throttle": [0, 0.5]}})
