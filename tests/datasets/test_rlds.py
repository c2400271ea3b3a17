"""RLDS JSON Lines: exact round trips, manifests, anonymised operators, validation reports, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.export_manifest import manifest_path
from flywheel.datasets.rlds import export_rlds_jsonl, import_rlds_jsonl
from flywheel.errors import InvalidInput, NotFound

FEATURES: dict[str, dict[str, Any]] = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
    "observation.images.front": {"dtype": "video", "shape": [4, 6, 3], "names": ["height", "width", "channel"]},
    "observation.contact": {"dtype": "bool", "shape": [2], "names": None},
    "action": {"dtype": "float32", "shape": [2], "names": None},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "gripper.mode": {"dtype": "int64", "shape": [1], "names": None},
}


def _episode(rng: np.random.Generator, t: int, *, success: bool | None, operator: str | None) -> EpisodeArrays:
    meta: dict[str, Any] = {"source": "sim"}
    if operator is not None:
        meta["operator_id"] = operator
    return EpisodeArrays(
        {
            "observation.state": rng.standard_normal((t, 3)).astype(np.float32),
            "observation.images.front": rng.integers(0, 256, (t, 4, 6, 3), dtype=np.uint8),
            "observation.contact": rng.random((t, 2)) > 0.5,
            "action": rng.standard_normal((t, 2)).astype(np.float32),
            "next.reward": rng.standard_normal((t, 1)).astype(np.float32),
            "gripper.mode": rng.integers(-(2**40), 2**40, (t, 1), dtype=np.int64),
        },
        task=f"task {t}",
        success=success,
        metadata=meta,
    )


@pytest.fixture
def episodes() -> list[EpisodeArrays]:
    rng = np.random.default_rng(7)
    return [
        _episode(rng, 5, success=True, operator="alice"),
        _episode(rng, 1, success=None, operator="bob"),
        _episode(rng, 8, success=False, operator="alice"),
    ]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_round_trip_is_exact(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "export" / "eps.jsonl"
    export_rlds_jsonl(episodes, FEATURES, 15, out, origin="lab-a", salt="pepper")
    features, fps, imported, report = import_rlds_jsonl(out)
    assert report.ok and report.episodes_valid == 3 and report.steps_valid == 14
    assert fps == 15
    assert features == FEATURES
    back = list(imported)
    assert [e.task for e in back] == [e.task for e in episodes]
    assert [e.success for e in back] == [True, None, False]
    for orig, got in zip(episodes, back, strict=True):
        assert got.columns.keys() == orig.columns.keys()
        for key, col in orig.columns.items():
            assert got.columns[key].dtype == col.dtype, key
            np.testing.assert_array_equal(got.columns[key], col, err_msg=key)
        assert got.metadata["source"] == "sim"


def test_steps_follow_the_rlds_layout(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.jsonl"
    export_rlds_jsonl(episodes, FEATURES, 10, out, origin="lab-a")
    header, first, second, third = _lines(out)
    assert header["rlds_header"]["fps"] == 10
    steps = first["steps"]
    assert set(steps[0]) == {
        "observation", "action", "reward", "discount", "is_first", "is_last", "is_terminal", "timestamp", "extras",
    }  # fmt: skip
    assert set(steps[0]["observation"]) == {"state", "images.front", "contact"}
    assert steps[0]["extras"] == {"gripper.mode": episodes[0].columns["gripper.mode"][0].tolist()}
    assert [s["is_first"] for s in steps] == [True, False, False, False, False]
    assert [s["is_last"] for s in steps] == [False, False, False, False, True]
    assert [s["timestamp"] for s in steps] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert steps[-1]["is_terminal"] is True  # successful episode ends in a terminal state
    assert third["steps"][-1]["is_terminal"] is False  # a failed one was truncated
    assert second["steps"][0]["is_first"] and second["steps"][0]["is_last"]  # a one-step episode
    assert first["episode_metadata"]["task"] == "task 5"
    assert {s["discount"] for s in steps} == {1.0}


def test_manifest_counts_hashes_and_anonymises_operators(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.jsonl"
    manifest = export_rlds_jsonl(episodes, FEATURES, 10, out, origin="lab-a")
    on_disk = json.loads(manifest_path(out).read_text())
    assert on_disk == manifest.to_dict()
    assert on_disk["origin"] == "lab-a" and on_disk["episodes"] == 3 and on_disk["steps"] == 14
    assert on_disk["files"] == [
        {"path": "eps.jsonl", "bytes": out.stat().st_size, "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    ]
    ops = [line["episode_metadata"]["operator_id"] for line in _lines(out)[1:]]
    assert ops[0] == ops[2] != ops[1]  # stable within the export, distinct operators stay distinct
    assert sorted(on_disk["operators"]) == sorted(set(ops))
    text = out.read_text() + manifest_path(out).read_text()
    assert "alice" not in text and "bob" not in text


def test_pseudonyms_depend_on_the_salt(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    a = export_rlds_jsonl(episodes, FEATURES, 10, tmp_path / "a.jsonl", origin="x", salt="s1")
    b = export_rlds_jsonl(episodes, FEATURES, 10, tmp_path / "b.jsonl", origin="x", salt="s1")
    c = export_rlds_jsonl(episodes, FEATURES, 10, tmp_path / "c.jsonl", origin="x", salt="s2")
    d = export_rlds_jsonl(episodes, FEATURES, 10, tmp_path / "d.jsonl", origin="x")
    assert a.operators == b.operators
    assert set(a.operators).isdisjoint(c.operators) and set(a.operators).isdisjoint(d.operators)


def test_operator_ids_argument_overrides_metadata(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.jsonl"
    manifest = export_rlds_jsonl(episodes, FEATURES, 10, out, origin="x", operator_ids={0: "bob", 2: "bob"})
    assert len(manifest.operators) == 1  # everyone is bob now


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda e: e.columns.pop("action"), "episode #1", "misses the column 'action'"),
        (lambda e: e.columns.__setitem__("action", np.zeros((1, 3), np.float32)), "episode #1.action", "shape"),
        (lambda e: e.columns["observation.state"].__setitem__((0, 1), np.nan), "episode #1.observation.state", "nan"),
        (lambda e: e.columns.__setitem__("gripper.mode", np.zeros((1, 1), np.float32)), "episode #1.gripper.mode",
         "dtype"),
    ],
)  # fmt: skip
def test_export_refuses_bad_episodes_and_writes_nothing(
    tmp_path: Path, episodes: list[EpisodeArrays], mutate: Any, field: str, words: str
) -> None:
    mutate(episodes[1])
    out = tmp_path / "eps.jsonl"
    with pytest.raises(InvalidInput) as info:
        export_rlds_jsonl(episodes, FEATURES, 10, out, origin="x")
    assert info.value.field == field and words in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_unsupported_dtype_and_missing_action(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        export_rlds_jsonl([], {"action": {"dtype": "complex64", "shape": [1]}}, 10, tmp_path / "x.jsonl", origin="x")
    assert info.value.field == "features.action.dtype" and "float32" in info.value.allowed
    with pytest.raises(InvalidInput, match="action"):
        export_rlds_jsonl([], {"obs": {"dtype": "float32", "shape": [1]}}, 10, tmp_path / "x.jsonl", origin="x")
    with pytest.raises(InvalidInput) as info:
        export_rlds_jsonl([], FEATURES, 10, tmp_path / "x.jsonl", origin=" ")
    assert info.value.field == "origin"


def _broken_file(tmp_path: Path, episodes: list[EpisodeArrays]) -> Path:
    """Six episodes (5, 1, 8, 5, 1, 8 steps): 0 and 5 valid, the others each broken in one way."""
    out = tmp_path / "eps.jsonl"
    export_rlds_jsonl(episodes * 2, FEATURES, 10, out, origin="x")
    header, *eps = _lines(out)
    for i, ep in enumerate(eps):
        ep["episode_metadata"]["episode_id"] = f"ep{i}"
    del eps[1]["steps"][0]["action"]  # missing key
    eps[2]["steps"][3]["observation"]["state"] = [1.0, 2.0]  # ragged
    eps[4]["steps"][0]["observation"]["state"][0] = float("nan")  # non-finite
    eps[3]["steps"][0]["is_first"] = False  # flags wrong
    eps[3]["steps"][-1]["is_last"] = False
    lines = [json.dumps(header), *(json.dumps(e) for e in eps)]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_validation_reports_every_invalid_episode_and_keeps_the_valid(
    tmp_path: Path, episodes: list[EpisodeArrays]
) -> None:
    _, _, imported, report = import_rlds_jsonl(_broken_file(tmp_path, episodes))
    assert report.episodes_total == 6 and report.episodes_valid == 2
    assert report.invalid_episodes == ["ep1", "ep2", "ep3", "ep4"]
    text = report.summary()
    assert "episode ep1, step 0, action: step is missing 'action'" in text
    assert "episode ep2, step 3, observation/state: shape [2], expected [3]" in text
    assert "episode ep4, step 0, observation/state: non-finite" in text
    assert "episode ep3, step 0, is_first: must be true on the first step only" in text
    assert "episode ep3, step 4, is_last: must be true on the last step only" in text
    got = list(imported)
    assert [e.metadata["episode_id"] for e in got] == ["ep0", "ep5"]
    np.testing.assert_array_equal(got[0].columns["action"], episodes[0].columns["action"])
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


def test_strict_import_raises_with_the_report(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    with pytest.raises(InvalidInput, match="ep3"):
        import_rlds_jsonl(_broken_file(tmp_path, episodes), strict=True)


@pytest.mark.parametrize(("line", "words"), [("[1, 2]", "line 2 is a JSON list"), ("{oops", "line 2 is not valid")])
def test_a_line_that_is_not_an_object_is_refused(tmp_path: Path, line: str, words: str) -> None:
    path = tmp_path / "x.jsonl"
    header = {"rlds_header": {"fps": 10, "features": {"action": {"dtype": "float32", "shape": [1]}}}}
    path.write_text(json.dumps(header) + "\n" + line + "\n")
    with pytest.raises(InvalidInput) as info:
        import_rlds_jsonl(path)
    assert words in str(info.value) and info.value.allowed == "one JSON object per line"


def test_headerless_files_have_features_and_fps_inferred(tmp_path: Path) -> None:
    steps = [
        {"observation": {"pos": [0.5 * i, 1.0]}, "action": [i], "reward": 0.0, "is_first": i == 0,
         "is_last": i == 3, "is_terminal": False, "timestamp": i / 20}
        for i in range(4)
    ]  # fmt: skip
    path = tmp_path / "plain.json"
    path.write_text(json.dumps([{"episode_metadata": {"task": "push"}, "steps": steps}]))
    features, fps, episodes, report = import_rlds_jsonl(path)
    assert report.ok and fps == 20
    assert features["observation.pos"]["dtype"] == "float32" and features["observation.pos"]["shape"] == [2]
    assert features["action"] == {"dtype": "int64", "shape": [1], "names": None}
    (ep,) = list(episodes)
    assert ep.task == "push" and ep.columns["action"][:, 0].tolist() == [0, 1, 2, 3]


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        import_rlds_jsonl(tmp_path / "nope.jsonl")


def test_reward_column_is_exported_even_when_not_a_declared_feature(tmp_path: Path) -> None:
    # Flywheel's reader returns next.reward/next.done columns besides the user features
    reward = np.array([[0.0], [0.5], [1.0]], np.float32)
    ep = EpisodeArrays({"action": np.zeros((3, 1), np.float32), "next.reward": reward,
                        "next.done": np.array([[False], [False], [True]])}, task="t")  # fmt: skip
    out = tmp_path / "eps.jsonl"
    export_rlds_jsonl([ep], {"action": {"dtype": "float32", "shape": [1]}}, 10, out, origin="x")
    assert [s["reward"] for s in _lines(out)[1]["steps"]] == [0.0, 0.5, 1.0]
    features, _, episodes, _ = import_rlds_jsonl(out)
    assert "next.reward" in features and "next.done" not in features
    np.testing.assert_array_equal(next(episodes).columns["next.reward"], reward)
