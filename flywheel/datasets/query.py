"""Querying episode records by time range, success, task, chunk and deleted flag."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from flywheel.datasets.records import EpisodeRecord
from flywheel.errors import InvalidInput

_ANY = object()


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(f"must be a datetime, got {type(value).__name__}", field=field)
    if value.tzinfo is None:
        raise InvalidInput("must carry a timezone (records are in UTC)", field=field, allowed="aware datetime")
    return value


def query_episodes(
    records: Sequence[EpisodeRecord],
    *,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    success: bool | object | None = _ANY,
    task: str | Iterable[str] | None = None,
    chunk_id: int | Iterable[int] | None = None,
    deleted: bool | None = False,
    skew_flagged: bool | None = None,
) -> list[EpisodeRecord]:
    """Filter episode records; every criterion left at its default matches everything.

    Args:
        records: the records to search (``DatasetReader(root).records``).
        created_after: keep episodes created at or after this instant.
        created_before: keep episodes created before this instant.
        success: True, False, or None for "unknown"; leave out to match all.
        task: one task or several.
        chunk_id: one chunk id (append batch) or several.
        deleted: False (default) hides soft-deleted episodes, True keeps only them, None keeps both.
        skew_flagged: keep only flagged (True) or unflagged (False) episodes.

    Returns:
        The matching records, in episode_index order.

    Example:
        >>> from datetime import UTC, datetime
        >>> r = EpisodeRecord(0, "ab", 1, datetime(2025, 1, 1, tzinfo=UTC), 10, 0, 10, "look", success=True)
        >>> [x.episode_index for x in query_episodes([r], success=True, chunk_id=1)]
        [0]
    """
    after = _aware(created_after, "created_after")
    before = _aware(created_before, "created_before")
    if success is not _ANY and success is not None and not isinstance(success, bool):
        raise InvalidInput(f"must be true, false or null, got {success!r}", field="success")
    if deleted is not None and not isinstance(deleted, bool):
        raise InvalidInput(f"must be true, false or null, got {deleted!r}", field="deleted")
    tasks = None if task is None else ({task} if isinstance(task, str) else set(task))
    chunks = None if chunk_id is None else ({chunk_id} if isinstance(chunk_id, int) else set(chunk_id))
    out = []
    for r in records:
        if deleted is not None and r.soft_deleted != deleted:
            continue
        if after is not None and r.created_at < after:
            continue
        if before is not None and r.created_at >= before:
            continue
        if success is not _ANY and r.success is not success:
            continue
        if tasks is not None and r.task not in tasks:
            continue
        if chunks is not None and r.chunk_id not in chunks:
            continue
        if skew_flagged is not None and r.skew_flagged != skew_flagged:
            continue
        out.append(r)
    return out
