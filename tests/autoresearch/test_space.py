"""Search space: declarations, exact encode/decode round trips, snapping, errors that name the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.autoresearch.space import ALLOWED_FORMS, SearchSpace
from flywheel.errors import InvalidInput

ISSUE_SPACE = {
    "n_steer": {"type": "int", "low": 3, "high": 9},
    "n_throttle": {"type": "int", "low": 1, "high": 5},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
}


def test_the_issue_round_trip_is_identical() -> None:
    space = SearchSpace(params=ISSUE_SPACE)
    params = {"n_steer": 7, "n_throttle": 3, "learning_rate": 0.002}
    back = space.decode(space.encode(params))
    assert back == params
    assert type(back["n_steer"]) is int and type(back["learning_rate"]) is float


def test_yaml_declaration_matches_python() -> None:
    text = """
n_steer: {type: int, low: 3, high: 9}
n_throttle: {type: int, low: 1, high: 5}
learning_rate: {type: float, low: 1e-5, high: 1e-1, log: true}
"""
    assert SearchSpace.from_yaml(text).to_dict() == SearchSpace(params=ISSUE_SPACE).to_dict()


def test_yaml_file(tmp_path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("params:\n  net: {type: categorical, choices: [small, large]}\n")
    assert SearchSpace.from_yaml(path).names == ["net"]


def test_every_value_of_every_kind_round_trips() -> None:
    space = SearchSpace(params={
        "i": {"type": "int", "low": -3, "high": 4},
        "li": {"type": "int", "low": 1, "high": 1000, "log": True},
        "f": {"type": "float", "low": -1.5, "high": 2.5},
        "lf": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
        "c": {"type": "categorical", "choices": ["a", 2, True, 0.5]},
    })
    rng = np.random.default_rng(0)
    for i in range(-3, 5):
        for li in (1, 2, 3, 17, 999, 1000):
            for c in ["a", 2, True, 0.5]:
                p = {"i": i, "li": li, "f": round(float(rng.uniform(-1.5, 2.5)), 6),
                     "lf": float(f"{rng.uniform(1e-6, 1):.6g}"), "c": c}
                back = space.decode(space.encode(p))
                assert back == p and type(back["c"]) is type(c)


def test_categoricals_are_one_hot_and_ints_sit_in_cell_centres() -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 0, "high": 3},
                                "net": {"type": "categorical", "choices": ["s", "m", "l"]}})
    x = space.encode({"n": 2, "net": "m"})
    assert np.allclose(x, [2.5 / 4, 0, 1, 0])
    assert space.dim == 4


def test_decode_of_any_cube_point_is_valid_and_snap_is_idempotent() -> None:
    space = SearchSpace(params={**ISSUE_SPACE, "net": {"type": "categorical", "choices": ["s", "m", "l"]}})
    rng = np.random.default_rng(1)
    xs = rng.uniform(-0.2, 1.2, size=(200, space.dim))
    for x in xs:
        space.validate(space.decode(x))
    snapped = space.snap(xs)
    assert np.allclose(space.snap(snapped), snapped)
    for x, s in zip(xs, snapped, strict=True):
        assert space.decode(x) == space.decode(s)
        assert np.allclose(space.encode(space.decode(s)), s)


def test_uniform_samples_cover_every_integer_equally() -> None:
    space = SearchSpace(params={"n": {"type": "int", "low": 1, "high": 4}})
    values = [space.decode(x)["n"] for x in space.sample(np.random.default_rng(0), 4000)]
    counts = np.bincount(values)[1:]
    assert counts.min() > 900 and counts.max() < 1100


@pytest.mark.parametrize("decl, needle", [
    ({"type": "int", "low": 5, "high": 1}, "high"),
    ({"type": "int", "low": 0, "high": 4, "log": True}, "log"),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log"),
    ({"type": "float", "low": 1.0}, "high"),
    ({"type": "categorical", "choices": []}, "choices"),
    ({"type": "categorical", "choices": ["a", "a"]}, "distinct"),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.1}, "step"),
    ({"type": "normal", "mean": 0}, "type"),
    ({"low": 0, "high": 1}, "type"),
    ("int(3, 9)", "type"),
])
def test_bad_declarations_name_the_parameter_and_the_allowed_forms(decl, needle) -> None:
    with pytest.raises(InvalidInput) as err:
        SearchSpace(params={"ok": {"type": "int", "low": 0, "high": 1}, "bad_one": decl})
    assert err.value.field == "bad_one"
    assert err.value.allowed == ALLOWED_FORMS
    assert needle in str(err.value)


def test_empty_space_and_bad_yaml_are_refused() -> None:
    with pytest.raises(InvalidInput):
        SearchSpace(params={})
    with pytest.raises(InvalidInput):
        SearchSpace.from_yaml("- just\n- a list\n")


@pytest.mark.parametrize("params, field", [
    ({"n_steer": 10, "n_throttle": 3, "learning_rate": 0.002}, "n_steer"),
    ({"n_steer": 7.5, "n_throttle": 3, "learning_rate": 0.002}, "n_steer"),
    ({"n_steer": 7, "n_throttle": 3, "learning_rate": 0.5}, "learning_rate"),
    ({"n_steer": 7, "n_throttle": 3}, "params"),
    ({"n_steer": 7, "n_throttle": 3, "learning_rate": 0.002, "extra": 1}, "params"),
])
def test_out_of_space_values_are_refused(params, field) -> None:
    with pytest.raises(InvalidInput) as err:
        SearchSpace(params=ISSUE_SPACE).encode(params)
    assert err.value.field == field


def test_python_declaration_with_pydantic_models() -> None:
    from flywheel.autoresearch.space import CategoricalParam, FloatParam, IntParam

    space = SearchSpace(params={"n_steer": IntParam(low=3, high=9),
                                "learning_rate": FloatParam(low=1e-5, high=1e-1, log=True),
                                "net": CategoricalParam(choices=["small", "large"])})
    assert space.to_dict()["learning_rate"]["log"] is True
    p = {"n_steer": 4, "learning_rate": 3e-4, "net": "large"}
    assert space.decode(space.encode(p)) == p
