"""The declared format: paths, info.json, feature declarations, version check, arrow round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.format import (
    DatasetVersionError,
    data_file,
    from_arrow,
    load_info,
    make_info,
    numpy_to_arrow,
    to_arrow,
    validate_features,
    video_file,
)
from flywheel.errors import NotFound


def test_paths_follow_lerobot_chunking() -> None:
    assert data_file(Path("r"), 999).as_posix() == "r/data/chunk-000/episode_000999.parquet"
    assert data_file(Path("r"), 1000).as_posix() == "r/data/chunk-001/episode_001000.parquet"
    assert video_file(Path("r"), "cam", 2500).as_posix() == "r/videos/chunk-002/cam/episode_002500.mp4"


def test_info_totals_and_chunks() -> None:
    feats = validate_features({"cam": {"dtype": "video", "shape": [4, 6, 3]}, "a": {"dtype": "float32", "shape": [2]}})
    info = make_info(features=feats, fps=25, robot_type="arm", total_episodes=1001, total_frames=5, total_tasks=2)
    assert (info["total_chunks"], info["total_videos"], info["splits"]) == (2, 1001, {"train": "0:1001"})
    assert info["features"]["cam"]["names"] == ["height", "width", "channels"]
    assert info["features"]["cam"]["info"]["video.height"] == 4


def test_default_columns_in_declarations_are_accepted_as_is() -> None:
    feats = validate_features({"a": {"dtype": "float32", "shape": [2]},
                               "index": {"dtype": "int64", "shape": [1], "names": None}})
    assert list(feats) == ["a"]


def test_version_and_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_info(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text(json.dumps({"codebase_version": "v3.0", "fps": 1}))
    with pytest.raises(DatasetVersionError) as err:
        load_info(tmp_path)
    assert err.value.field == "codebase_version" and err.value.allowed == "v2.1"


@pytest.mark.parametrize(("dtype", "shape"), [("float32", 1), ("float64", 3), ("int64", 2), ("uint8", 4), ("bool", 1)])
def test_arrow_round_trip(dtype: str, shape: int) -> None:
    values = (np.arange(7 * shape) % 3).reshape(7, shape).astype(dtype)
    spec = {"dtype": dtype, "shape": [shape]}
    back = from_arrow(to_arrow(values, spec), spec)
    assert back.dtype == values.dtype
    np.testing.assert_array_equal(back, values)


def test_bools_pack_across_byte_boundaries() -> None:
    values = np.random.default_rng(0).random(19) > 0.5
    assert numpy_to_arrow(values).to_pylist() == values.tolist()
