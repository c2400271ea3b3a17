"""Metadata edits: trim, soft delete, undelete, success. Immediate, metadata only, raw files untouched.

Each edit appends one fsynced event to the sidecar log under the folder's edit lock, so edits from
several processes (and a writer recording at the same time) never interleave or get lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flywheel.datasets.format import EDIT_LOCK, WRITE_LOCK, load_info, user_features, video_keys
from flywheel.datasets.records import EpisodeRecord, append_events, load_records, now
from flywheel.durable import locked
from flywheel.errors import Conflict, InvalidInput, NotFound

#: How long an edit waits for a live writer to commit an episode it has just saved.
_COMMIT_WAIT_S = 5.0


def _indexes(episode_indexes: int | Iterable[int]) -> list[int]:
    items = [episode_indexes] if isinstance(episode_indexes, int) else list(episode_indexes)
    for i in items:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InvalidInput(f"must be an integer, got {i!r}", field="episode_index")
    if not items:
        raise InvalidInput("name at least one episode", field="episode_index")
    return items


def _committed(root: Path, wanted: list[int]) -> list[EpisodeRecord]:
    """Committed records, waiting briefly for episodes a live writer saved but has not committed yet.

    Episodes saved by a writer that died are committed here (the write lock is free then).
    """
    from flywheel.datasets.commit import recover, visible_records

    keys = video_keys(user_features(load_info(root)["features"]))
    deadline = time.monotonic() + _COMMIT_WAIT_S
    while True:
        records = load_records(root)
        top = max(wanted, default=-1)
        if top < len(records) or top >= len(visible_records(root, records, keys)):
            return records  # committed, or unknown altogether (NotFound follows)
        try:
            with locked(root / WRITE_LOCK, what=f"dataset {root}"):
                return recover(root, records, keys)
        except Conflict:
            if time.monotonic() > deadline:
                raise Conflict(f"episode {top} is still being committed by the writer of {root}",
                               hint="retry in a moment") from None
            time.sleep(0.02)


def _edit(root: Path, make_events: Any, wanted: list[int]) -> list[EpisodeRecord]:
    root = Path(root)
    load_info(root)
    with locked(root / EDIT_LOCK, what=f"dataset {root}", blocking=True):
        records = _committed(root, wanted)
        events = make_events(records)
        append_events(root, events)
        return [_apply(records, e) for e in events]


def _apply(records: list[EpisodeRecord], event: dict[str, Any]) -> EpisodeRecord:
    rec = records[event["episode_index"]]
    op = event["op"]
    if op == "trim":
        rec.start_frame, rec.end_frame = event["start_frame"], event["end_frame"]
    elif op in ("delete", "undelete"):
        rec.soft_deleted = op == "delete"
    else:
        rec.success = event["success"]
    return rec


def _check_exists(records: list[EpisodeRecord], index: int) -> EpisodeRecord:
    if not 0 <= index < len(records):
        raise NotFound("episode", index, hint=f"episodes are 0..{len(records) - 1}")
    return records[index]


def trim_episode(root: Path, episode_index: int, *, start_frame: int, end_frame: int) -> EpisodeRecord:
    """Show only frames ``start_frame..end_frame`` (end exclusive) of an episode; the file is kept.

    Trimming again replaces the previous trim; ``start_frame=0, end_frame=total_frames`` undoes it.

    Raises:
        NotFound: no such episode.
        InvalidInput: a range outside ``0 <= start < end <= total_frames``.

    Example:
        >>> trim_episode(Path("ds"), 3, start_frame=10, end_frame=150).length  # doctest: +SKIP
        140
    """
    [index] = _indexes(episode_index)
    for name, value in (("start_frame", start_frame), ("end_frame", end_frame)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"must be an integer, got {value!r}", field=name)

    def events(records: list[EpisodeRecord]) -> list[dict[str, Any]]:
        rec = _check_exists(records, index)
        if not 0 <= start_frame < end_frame <= rec.total_frames:
            raise InvalidInput(f"range {start_frame}..{end_frame} does not fit episode {index}",
                               field="start_frame/end_frame", allowed=f"0 <= start < end <= {rec.total_frames}")
        return [{"op": "trim", "episode_index": index, "start_frame": start_frame, "end_frame": end_frame,
                 "at": now().isoformat()}]

    return _edit(root, events, [index])[0]


def _set_deleted(root: Path, episode_indexes: int | Iterable[int], deleted: bool) -> list[EpisodeRecord]:
    indexes = _indexes(episode_indexes)

    def events(records: list[EpisodeRecord]) -> list[dict[str, Any]]:
        for i in indexes:
            _check_exists(records, i)
        op = "delete" if deleted else "undelete"
        return [{"op": op, "episode_index": i, "at": now().isoformat()} for i in dict.fromkeys(indexes)]

    return _edit(root, events, indexes)


def soft_delete(root: Path, episode_indexes: int | Iterable[int]) -> list[EpisodeRecord]:
    """Hide episodes from reads and queries until undeleted or compacted; files are kept.

    Raises:
        NotFound: an index names no episode (nothing is changed).

    Example:
        >>> [r.soft_deleted for r in soft_delete(Path("ds"), [2, 5])]  # doctest: +SKIP
        [True, True]
    """
    return _set_deleted(root, episode_indexes, True)


def undelete(root: Path, episode_indexes: int | Iterable[int]) -> list[EpisodeRecord]:
    """Make soft-deleted episodes visible again.

    Example:
        >>> undelete(Path("ds"), 2)[0].soft_deleted  # doctest: +SKIP
        False
    """
    return _set_deleted(root, episode_indexes, False)


def set_success(root: Path, episode_index: int, success: bool | None) -> EpisodeRecord:
    """Label an episode as a success, a failure, or unknown (None).

    Example:
        >>> set_success(Path("ds"), 0, True).success  # doctest: +SKIP
        True
    """
    [index] = _indexes(episode_index)
    if success is not None and not isinstance(success, bool):
        raise InvalidInput(f"must be true, false or null, got {success!r}", field="success")

    def events(records: list[EpisodeRecord]) -> list[dict[str, Any]]:
        _check_exists(records, index)
        return [{"op": "success", "episode_index": index, "success": success, "at": now().isoformat()}]

    return _edit(root, events, [index])[0]
