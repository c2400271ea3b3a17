"""The pending log: episodes saved but not yet committed, each as its record and its parquet bytes.

``meta/flywheel_pending.log`` gets one entry per saved episode, appended with one ``writev``::

    {"size":<n>,"add":<the episode's "add" event>}\\n
    <n bytes: the episode's parquet file>

Nothing is fsynced: the operating system keeps every completed write when the process is killed. A
power loss may lose or garble what was not yet written back, which the sidecar (the commit point) never
depends on; recovery checks each payload (a whole parquet file of the recorded length) before it commits
it. Reading stops at the first entry that is not whole (a header that does not parse, fewer bytes than
its size): that is the tail of a write a kill cut short. Appending to one open file costs far less than
creating a file per episode; the committer thread writes each episode's own parquet file from the same
bytes.

Example:
    >>> log = PendingLog(Path("/tmp/fw-pending.log"))  # doctest: +SKIP
    >>> log.append(b'["add",0]\\n', b"PAR1...PAR1")  # doctest: +SKIP
    >>> [e.event for e in read_entries(Path("/tmp/fw-pending.log"))]  # doctest: +SKIP
    [['add', 0]]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True)
class Entry:
    """One saved episode in the pending log.

    Attributes:
        event: its "add" event, as the sidecar will hold it.
        offset: where its parquet bytes start in the log.
        size: how many bytes they are.
    """

    event: list[Any]
    offset: int
    size: int


def header(add_line: bytes, size: int) -> bytes:
    """The header line of an entry, from the episode's encoded "add" line and its parquet size."""
    return b'{"size":%d,"add":%s}\n' % (size, add_line.rstrip(b"\n"))


class PendingLog:
    """The writer's end of the pending log: opened on the first append, kept open until ``close``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._size = 0

    def append(self, add_line: bytes, payload: Any) -> None:
        """Append one entry (``payload``: the parquet bytes, any buffer).

        If the write fails or comes up short, the log is cut back to where it was and the error raised,
        so a later entry never follows a broken one.
        """
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        parts = [header(add_line, len(payload)), memoryview(payload)]
        total = len(parts[0]) + len(parts[1])
        try:
            written = os.writev(self._fd, parts)
            if written != total:
                raise OSError(f"short write to {self.path}: {written} of {total} bytes")
        except BaseException:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += total

    def close(self) -> None:
        """Close the file (the log stays on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_entries(path: Path) -> list[Entry]:
    """The whole entries of a pending log, in order; [] if there is no log."""
    try:
        with open(path, "rb") as f:
            return _scan(f, os.fstat(f.fileno()).st_size)
    except FileNotFoundError:
        return []


def _scan(f: BinaryIO, end: int) -> list[Entry]:
    """Read entry headers from ``f`` (``end`` bytes long), skipping the payloads."""
    entries: list[Entry] = []
    while True:
        line = f.readline()
        if not line.endswith(b"\n"):
            return entries
        try:
            head = json.loads(line)
            size, event = int(head["size"]), head["add"]
        except (ValueError, TypeError, KeyError):
            return entries
        offset = f.tell()
        if type(event) is not list or size < 0 or offset + size > end:
            return entries
        entries.append(Entry(event, offset, size))
        f.seek(size, os.SEEK_CUR)


def read_payload(path: Path, entry: Entry) -> bytes | None:
    """The parquet bytes of an entry, or None if the log is gone or shorter now."""
    try:
        with open(path, "rb") as f:
            f.seek(entry.offset)
            data = f.read(entry.size)
    except FileNotFoundError:
        return None
    return data if len(data) == entry.size else None
