"""The sidecar log: replay, torn tails, corruption, field order named by the schema line."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flywheel.datasets.format import SIDECAR_PATH, DatasetCorruptError
from flywheel.datasets.records import (
    RECORD_FIELDS,
    EpisodeRecord,
    add_event,
    encode_events,
    load_records,
    schema_header,
    truncate_torn_tail,
)


def rec(i: int, **kw) -> EpisodeRecord:
    return EpisodeRecord(episode_index=i, episode_id=f"id{i}", chunk_id=0, created_at=datetime(2025, 1, 1, tzinfo=UTC),
                         total_frames=10, start_frame=0, end_frame=10, task="t", **kw)


def write(root: Path, events: list) -> Path:
    path = root / SIDECAR_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_events([schema_header({}, 50, "arm"), *events]))
    return path


def test_replay_applies_edit_events_in_order(tmp_path: Path) -> None:
    write(tmp_path, [add_event(rec(0)), add_event(rec(1, success=True, metadata={"k": [1, 2]})),
                     {"op": "trim", "episode_index": 0, "start_frame": 2, "end_frame": 5},
                     {"op": "delete", "episode_index": 1}, {"op": "undelete", "episode_index": 1},
                     {"op": "delete", "episode_index": 0}, {"op": "success", "episode_index": 1, "success": False}])
    r0, r1 = load_records(tmp_path)
    assert (r0.start_frame, r0.end_frame, r0.soft_deleted) == (2, 5, True)
    assert (r1.soft_deleted, r1.success, r1.metadata) == (False, False, {"k": [1, 2]})
    assert r0.created_at == datetime(2025, 1, 1, tzinfo=UTC)


def test_metadata_only_python_json_writes_reads_back_the_same(tmp_path: Path) -> None:
    """NaN, integers past 64 bits and lone surrogates: json writes them, the fast reader must not lose them."""
    odd = {"nan": float("nan"), "big": 2**70, "surrogate": "\ud800", "plain": [1.5, "é"]}
    write(tmp_path, [add_event(rec(0)), add_event(rec(1, metadata=odd))])
    r0, r1 = load_records(tmp_path)
    assert r0.metadata == {} and r1.metadata["big"] == 2**70 and r1.metadata["surrogate"] == "\ud800"
    assert math.isnan(r1.metadata["nan"]) and r1.metadata["plain"] == [1.5, "é"]


def test_torn_last_line_is_ignored_and_cut(tmp_path: Path) -> None:
    path = write(tmp_path, [add_event(rec(0))])
    whole = path.read_bytes()
    line = json.dumps(add_event(rec(1)), separators=(",", ":")).encode()
    for torn in (line[:20], line, line[:-1] + b"\x00"):
        path.write_bytes(whole + torn)
        assert [r.episode_index for r in load_records(tmp_path)] == [0]
    truncate_torn_tail(tmp_path)
    assert path.read_bytes() == whole


def test_corruption_before_the_last_line_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, [add_event(rec(0)), add_event(rec(1))])
    lines = path.read_bytes().split(b"\n")
    lines[1] = b'["add",0,"garbage'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DatasetCorruptError, match="line 2"):
        load_records(tmp_path)


@pytest.mark.parametrize("events", [
    [add_event(rec(1))],
    [add_event(rec(0)), add_event(rec(0))],
    [{"op": "trim", "episode_index": 3, "start_frame": 0, "end_frame": 1}],
    [{"op": "explode", "episode_index": 0}],
    [["add", 0, "too few"]],
])
def test_inconsistent_events_are_errors(tmp_path: Path, events: list) -> None:
    write(tmp_path, events)
    with pytest.raises(DatasetCorruptError):
        load_records(tmp_path)


def test_add_lines_follow_the_field_order_of_the_schema_line(tmp_path: Path) -> None:
    fields = list(reversed(RECORD_FIELDS))
    r = rec(0, source="import:rlds")
    line = ["add", *reversed(add_event(r)[1:])]
    header = {**schema_header({}, 50, "arm"), "record_fields": fields}
    (tmp_path / "meta").mkdir()
    (tmp_path / SIDECAR_PATH).write_bytes(encode_events([header, line]))
    assert load_records(tmp_path) == [r]
