"""Bad specs are refused with the field named, before any solving starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.errors import InvalidInput
from flywheel.safety.verify import bab
from flywheel.safety.verify.engine import verify
from flywheel.safety.verify.examples import random_mlp_onnx
from flywheel.safety.verify.spec import load_spec, parse_spec

BOX = {"low": [-1, -1], "high": [1, 1]}


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def no_solving(*args: object, **kwargs: object) -> None:
        raise AssertionError("solving started")

    monkeypatch.setattr(bab, "branch_and_bound", no_solving)
    return random_mlp_onnx(tmp_path / "p.onnx", [2, 8, 2], seed=0)


@pytest.mark.parametrize(("prop", "field"), [
    ({"kind": "output_bounds", "box": {"low": [1, 0], "high": [0, 1]}, "actions": {"low": [0], "high": [1]}},
     "box"),
    ({"kind": "output_bounds", "box": {"low": [], "high": []}, "actions": {"low": [0], "high": [1]}}, "box"),
    ({"kind": "output_bounds", "box": BOX, "actions": {"low": [2], "high": [1]}}, "actions"),
    ({"kind": "robustness", "epsilon": -1, "delta": 1, "points": [[0, 0]]}, "epsilon"),
    ({"kind": "robustness", "epsilon": 0.1, "delta": 1}, "robustness"),
    ({"kind": "magic"}, "properties.0"),
])
def test_invalid_specs_name_the_field(prop: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_spec({"properties": [{"name": "p", **prop}]})
    assert err.value.field is not None and err.value.field.startswith("spec.properties.0")
    assert field in err.value.field


@pytest.mark.parametrize(("prop", "field"), [
    ({"kind": "output_bounds", "box": {"low": [0, 0, 0], "high": [1, 1, 1]},
      "actions": {"low": [0, 0], "high": [1, 1]}}, "spec.properties.0.box"),
    ({"kind": "output_bounds", "box": BOX, "actions": {"low": [0, 0, 0], "high": [1, 1, 1]}},
     "spec.properties.0.actions.low"),
    ({"kind": "robustness", "epsilon": 0.1, "delta": 1, "points": [[0, 0]], "actions": [5]},
     "spec.properties.0.actions"),
    ({"kind": "horizon", "steps": 3, "dt": 0.1, "start": {"low": [0], "high": [0.1]},
      "joint_limits": {"low": [-1], "high": [1]}, "observation": {"state_matrix": [[1], [0]], "offset": [0, 0]},
      "action_indices": [7]}, "spec.properties.0.action_indices"),
    ({"kind": "horizon", "steps": 3, "dt": 0.1, "start": {"low": [0], "high": [0.1]},
      "joint_limits": {"low": [-1], "high": [1]}, "observation": {"state_matrix": [[1]], "offset": [0, 0]}},
     "spec.properties.0.observation.state_matrix"),
])
def test_specs_that_do_not_fit_the_policy_are_refused_before_solving(model: Path, prop: dict, field: str) -> None:
    spec = parse_spec({"properties": [{"name": "ok", "kind": "output_bounds", "box": BOX,
                                       "actions": {"low": [-9, -9], "high": [9, 9]}}, {"name": "p", **prop}]})
    with pytest.raises(InvalidInput) as err:
        verify(model, spec, time_limit_per_query=5)
    assert err.value.field == field.replace("properties.0", "properties.1")


def test_yaml_file_and_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("properties:\n  - {name: a, kind: robustness, epsilon: 0.1, delta: 1, points: [[0, 0]]}\n")
    assert load_spec(path).required == ["a"]
    path.write_text("properties: [")
    with pytest.raises(InvalidInput, match="not YAML"):
        load_spec(path)
    prop = {"name": "a", "kind": "robustness", "epsilon": 0.1, "delta": 1, "points": [[0, 0]]}
    with pytest.raises(InvalidInput, match="repeat"):
        parse_spec({"properties": [prop, prop]})
