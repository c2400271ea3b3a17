"""RLDS as TFRecord: exact round trips, the per-episode Example layout, checksums, validation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tfrecord.reader import tfrecord_loader
from tfrecord.writer import TFRecordWriter

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.tfrecord_io import export_rlds_tfrecord, import_rlds_tfrecord
from flywheel.errors import InvalidInput, NotFound

FEATURES: dict[str, dict[str, Any]] = {
    "observation.state": {"dtype": "float32", "shape": [4], "names": None},
    "observation.precise": {"dtype": "float64", "shape": [2], "names": None},
    "observation.images.wrist": {"dtype": "video", "shape": [5, 3, 3], "names": None},
    "observation.flags": {"dtype": "bool", "shape": [3], "names": None},
    "action": {"dtype": "float32", "shape": [2, 3], "names": None},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "counter": {"dtype": "int64", "shape": [1], "names": None},
}


def _episode(rng: np.random.Generator, t: int, success: bool | None, operator: str) -> EpisodeArrays:
    return EpisodeArrays(
        {
            "observation.state": rng.standard_normal((t, 4)).astype(np.float32) * 1e6,
            "observation.precise": rng.standard_normal((t, 2)),
            "observation.images.wrist": rng.integers(0, 256, (t, 5, 3, 3), dtype=np.uint8),
            "observation.flags": rng.random((t, 3)) > 0.5,
            "action": rng.standard_normal((t, 2, 3)).astype(np.float32),
            "next.reward": rng.standard_normal((t, 1)).astype(np.float32),
            "counter": rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, (t, 1), dtype=np.int64),
        },
        task="stack the cubes",
        success=success,
        metadata={"operator_id": operator, "scene": 3},
    )


@pytest.fixture
def episodes() -> list[EpisodeArrays]:
    rng = np.random.default_rng(11)
    return [_episode(rng, 6, True, "ann"), _episode(rng, 2, None, "ben"), _episode(rng, 9, False, "ann")]


def test_round_trip_is_exact(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.tfrecord"
    export_rlds_tfrecord(episodes, FEATURES, 50, out, origin="lab-b")
    features, fps, imported, report = import_rlds_tfrecord(out)
    assert report.ok and report.episodes_valid == 3 and report.steps_valid == 17
    assert fps == 50 and features == FEATURES
    back = list(imported)
    assert [e.success for e in back] == [True, None, False]
    assert {e.task for e in back} == {"stack the cubes"}
    for orig, got in zip(episodes, back, strict=True):
        assert got.metadata["scene"] == 3
        for key, col in orig.columns.items():
            assert got.columns[key].dtype == col.dtype, key
            np.testing.assert_array_equal(got.columns[key], col, err_msg=key)


def test_layout_is_one_example_per_episode_readable_by_the_tfrecord_package(
    tmp_path: Path, episodes: list[EpisodeArrays]
) -> None:
    out = tmp_path / "eps.tfrecord"
    export_rlds_tfrecord(episodes, FEATURES, 50, out, origin="lab-b")
    header, *records = list(tfrecord_loader(str(out), None))
    assert json.loads(header["flywheel/header"])["fps"] == 50
    assert len(records) == 3
    first = records[0]
    assert first["steps/is_first"].tolist() == [1, 0, 0, 0, 0, 0]
    assert first["steps/is_last"].tolist() == [0, 0, 0, 0, 0, 1]
    assert first["steps/is_terminal"].tolist() == [0, 0, 0, 0, 0, 1]
    assert records[2]["steps/is_terminal"].tolist() == [0] * 9
    np.testing.assert_array_equal(first["steps/action"], episodes[0].columns["action"].ravel())
    np.testing.assert_allclose(first["steps/timestamp"], np.arange(6) / 50, rtol=1e-6)
    assert first["steps/discount"].tolist() == [1.0] * 6
    assert len(first["steps/observation/images.wrist"]) == 6  # raw bytes per step
    assert first["episode_metadata/task"].decode() == "stack the cubes"
    assert first["episode_metadata/operator_id"] == records[2]["episode_metadata/operator_id"]
    assert first["episode_metadata/operator_id"] != records[1]["episode_metadata/operator_id"]
    assert b"ann" not in out.read_bytes()


def test_manifest_hashes_the_file(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.tfrecord"
    manifest = export_rlds_tfrecord(episodes, FEATURES, 50, out, origin="lab-b", salt="s")
    on_disk = json.loads((tmp_path / "eps.tfrecord.manifest.json").read_text())
    assert on_disk["format"] == "rlds-tfrecord" and on_disk["origin"] == "lab-b"
    assert (on_disk["episodes"], on_disk["steps"]) == (3, 17)
    assert on_disk["files"][0]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert len(manifest.operators) == 2


def test_export_refuses_bad_episode_and_leaves_nothing(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    episodes[2].columns["observation.precise"][4, 0] = np.inf
    with pytest.raises(InvalidInput) as info:
        export_rlds_tfrecord(episodes, FEATURES, 50, tmp_path / "eps.tfrecord", origin="x")
    assert info.value.field == "episode #2.observation.precise"
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_reports_the_broken_record_and_keeps_earlier_episodes(
    tmp_path: Path, episodes: list[EpisodeArrays]
) -> None:
    out = tmp_path / "eps.tfrecord"
    export_rlds_tfrecord(episodes, FEATURES, 50, out, origin="x")
    data = out.read_bytes()
    out.write_bytes(data[:-40])
    _, _, imported, report = import_rlds_tfrecord(out)
    assert report.episodes_valid == 2 and report.invalid_episodes == ["record #3"]
    assert "truncated record" in report.summary()
    assert len(list(imported)) == 2


def test_flipped_byte_fails_the_checksum(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.tfrecord"
    export_rlds_tfrecord(episodes[:1], FEATURES, 50, out, origin="x")
    data = bytearray(out.read_bytes())
    data[-100] ^= 0xFF
    out.write_bytes(bytes(data))
    _, _, imported, report = import_rlds_tfrecord(out)
    assert "record #1, record: data checksum mismatch" in report.summary()
    assert list(imported) == []


def _rewrite(path: Path, edit: Any) -> None:
    """Rewrite every episode record of a file through ``edit(record) -> datum``."""
    header, *records = list(tfrecord_loader(str(path), None))
    writer = TFRecordWriter(str(path))
    writer.write({"flywheel/header": (header["flywheel/header"], "byte")})
    for i, rec in enumerate(records):
        writer.write(edit(i, rec))
    writer.close()


def _datum(rec: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    def kind(v: Any) -> str:
        if isinstance(v, bytes) or (isinstance(v, np.ndarray) and v.dtype.kind == "S"):
            return "byte"
        return "float" if v.dtype == np.float32 else "int"

    return {k: (list(v) if isinstance(v, np.ndarray) and v.dtype.kind == "S" else v, kind(v)) for k, v in rec.items()}


def test_validation_names_episode_and_field(tmp_path: Path, episodes: list[EpisodeArrays]) -> None:
    out = tmp_path / "eps.tfrecord"
    export_rlds_tfrecord(episodes, FEATURES, 50, out, origin="x")

    def edit(i: int, rec: dict[str, Any]) -> dict[str, tuple[Any, str]]:
        rec["episode_metadata/episode_id"] = f"ep{i}".encode()
        if i == 0:
            rec["steps/observation/state"] = rec["steps/observation/state"][:-1]  # ragged
        if i == 1:
            del rec["steps/action"]  # missing
            rec["steps/is_last"] = np.zeros_like(rec["steps/is_last"])  # flags wrong
        return _datum(rec)

    _rewrite(out, edit)
    _, _, imported, report = import_rlds_tfrecord(out)
    text = report.summary()
    assert report.invalid_episodes == ["ep0", "ep1"]
    assert "episode ep0, observation/state: has 23 values, expected 6 steps × 4 = 24" in text
    assert "episode ep1, action: missing 'steps/action'" in text
    assert "episode ep1, step 1, is_last: must be true on the last step only" in text
    assert [e.metadata["episode_id"] for e in imported] == ["ep2"]


def test_headerless_files_need_fps_and_get_flat_features(tmp_path: Path) -> None:
    path = tmp_path / "plain.tfrecord"
    writer = TFRecordWriter(str(path))
    writer.write({
        "steps/observation/joint": (np.arange(6, dtype=np.float32), "float"),
        "steps/action": (np.array([1, 2, 3]), "int"),
        "steps/is_first": (np.array([1, 0, 0]), "int"),
        "steps/is_last": (np.array([0, 0, 1]), "int"),
    })  # fmt: skip
    writer.close()
    with pytest.raises(InvalidInput) as info:
        import_rlds_tfrecord(path)
    assert info.value.field == "fps"
    features, fps, imported, report = import_rlds_tfrecord(path, fps=5)
    assert report.ok and fps == 5
    assert features["observation.joint"]["shape"] == [2] and features["action"]["dtype"] == "int64"
    (ep,) = list(imported)
    assert ep.columns["observation.joint"].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        import_rlds_tfrecord(tmp_path / "nope.tfrecord")
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty"):
        import_rlds_tfrecord(tmp_path / "empty.tfrecord")
