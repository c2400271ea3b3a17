"""Query by time range, success, task, chunk and deleted flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flywheel.datasets.query import query_episodes
from flywheel.datasets.records import EpisodeRecord
from flywheel.errors import InvalidInput

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def rec(i: int, **kw) -> EpisodeRecord:
    base = {"episode_id": f"id{i}", "chunk_id": i // 4, "created_at": T0 + timedelta(minutes=i), "total_frames": 10,
            "start_frame": 0, "end_frame": 10, "task": "a" if i % 2 else "b", "success": [True, False, None][i % 3]}
    base.update(kw)
    return EpisodeRecord(episode_index=i, **base)


RECORDS = [rec(i) for i in range(12)]
RECORDS[5].soft_deleted = True


def idx(records: list[EpisodeRecord]) -> list[int]:
    return [r.episode_index for r in records]


def test_each_criterion() -> None:
    assert idx(query_episodes(RECORDS)) == [i for i in range(12) if i != 5]
    assert idx(query_episodes(RECORDS, deleted=True)) == [5]
    assert len(query_episodes(RECORDS, deleted=None)) == 12
    assert idx(query_episodes(RECORDS, success=True)) == [0, 3, 6, 9]
    assert idx(query_episodes(RECORDS, success=None)) == [2, 8, 11]
    assert idx(query_episodes(RECORDS, task="a", chunk_id=1)) == [7]
    assert idx(query_episodes(RECORDS, chunk_id=[0, 2], task=["a", "b"])) == [0, 1, 2, 3, 8, 9, 10, 11]
    window = query_episodes(RECORDS, created_after=T0 + timedelta(minutes=3), created_before=T0 + timedelta(minutes=7))
    assert idx(window) == [3, 4, 6]


def test_criteria_combine() -> None:
    got = query_episodes(RECORDS, success=False, task="a", created_after=T0 + timedelta(minutes=2))
    assert idx(got) == [7]


def test_bad_criteria_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        query_episodes(RECORDS, created_after=datetime(2025, 1, 1))
    assert err.value.field == "created_after"
    with pytest.raises(InvalidInput):
        query_episodes(RECORDS, success="yes")  # type: ignore[arg-type]
