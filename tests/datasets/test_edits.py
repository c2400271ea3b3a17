"""Trim, soft delete, undelete and success labels: immediate, metadata only, replayed on open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.edits import set_success, soft_delete, trim_episode, undelete
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput, NotFound

FEATURES = {"action": {"dtype": "float32", "shape": [2], "names": None}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for e in range(3):
            for i in range(10):
                w.add_frame({"action": np.array([e, i], np.float32)}, task="t")
            w.save_episode()
    return root


def files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (root / "data").rglob("*.parquet")}


def test_trim_changes_what_is_read_not_the_file(root: Path) -> None:
    before = files(root)
    rec = trim_episode(root, 1, start_frame=2, end_frame=7)
    assert (rec.start_frame, rec.end_frame, rec.length) == (2, 7, 5)
    reader = DatasetReader(root)
    np.testing.assert_array_equal(reader.read_episode(1).columns["action"][:, 1], [2, 3, 4, 5, 6])
    assert reader.read_episode(1, apply_trim=False).num_frames == 10
    assert files(root) == before
    trim_episode(root, 1, start_frame=0, end_frame=10)  # undo
    assert not DatasetReader(root).records[1].trimmed


@pytest.mark.parametrize(("start", "end"), [(5, 5), (-1, 4), (0, 11), (7, 3)])
def test_bad_trim_is_refused_and_changes_nothing(root: Path, start: int, end: int) -> None:
    log = (root / "meta/flywheel_episodes.jsonl").read_bytes()
    with pytest.raises(InvalidInput, match="0 <= start < end <= 10"):
        trim_episode(root, 0, start_frame=start, end_frame=end)
    assert (root / "meta/flywheel_episodes.jsonl").read_bytes() == log


def test_soft_delete_hides_and_undelete_restores(root: Path) -> None:
    before = files(root)
    soft_delete(root, [0, 2])
    reader = DatasetReader(root)
    assert [r.soft_deleted for r in reader.records] == [True, False, True]
    assert [ep.metadata["episode_index"] for ep in reader.iter_episodes()] == [1]
    assert len(list(reader.iter_episodes(include_deleted=True))) == 3
    undelete(root, 2)
    assert [ep.metadata["episode_index"] for ep in DatasetReader(root).iter_episodes()] == [1, 2]
    assert files(root) == before


def test_unknown_episode_is_not_found_and_nothing_changes(root: Path) -> None:
    with pytest.raises(NotFound):
        soft_delete(root, [1, 7])
    assert not any(r.soft_deleted for r in DatasetReader(root).records)
    with pytest.raises(NotFound):
        trim_episode(root, 3, start_frame=0, end_frame=1)


def test_success_label(root: Path) -> None:
    set_success(root, 1, True)
    set_success(root, 2, False)
    assert [r.success for r in DatasetReader(root).records] == [None, True, False]
    with pytest.raises(InvalidInput):
        set_success(root, 0, "yes")  # type: ignore[arg-type]
