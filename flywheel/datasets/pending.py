"""The pending log: episodes saved but not yet committed, each as its record and its frames.

``meta/flywheel_pending.log`` gets one entry per saved episode, appended with one ``writev``::

    {"size":<n>,"format":"arrow","crc":<CRC-32 of the payload>,"add":<the episode's "add" event>}\\n
    <n bytes: the episode's arrow table, as an Arrow IPC stream>

The payload is the table the episode's parquet file is encoded from (by the committer, off the
recording thread): an IPC stream is written in microseconds where parquet takes a quarter of a
millisecond. Logs written before this format (no ``format`` key) hold a whole parquet file per entry
and are read as such.

Nothing is fsynced: the operating system keeps every completed write when the process is killed. A
power loss may lose or garble what was not yet written back, which the sidecar (the commit point) never
depends on; recovery checks each payload (its CRC, then a table of the recorded length) before it
commits it. Reading stops at the first entry that is not whole (a header that does not parse, fewer
bytes than its size): that is the tail of a write a kill cut short. Appending to one open file costs far
less than creating a file per episode.

Example:
    >>> log = PendingLog(Path("/tmp/fw-pending.log"))  # doctest: +SKIP
    >>> log.append(b'["add",0]\\n', b"ARROW1...")  # doctest: +SKIP
    >>> [e.event for e in read_entries(Path("/tmp/fw-pending.log"))]  # doctest: +SKIP
    [['add', 0]]
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True)
class Entry:
    """One saved episode in the pending log.

    Attributes:
        event: its "add" event, as the sidecar will hold it.
        offset: where its payload starts in the log.
        size: how many bytes it is.
        format: ``arrow`` (an Arrow IPC stream) or ``parquet`` (a whole parquet file: older logs).
        crc: the payload's CRC-32, if the entry carries one (arrow entries do).
    """

    event: list[Any]
    offset: int
    size: int
    format: str = "parquet"
    crc: int | None = None


#: What an entry's payload can be.
FORMATS = ("arrow", "parquet")


def header(add_line: bytes, payload: Any) -> bytes:
    """The header line of an arrow entry, from the episode's encoded "add" line and its payload."""
    return b'{"size":%d,"format":"arrow","crc":%d,"add":%s}\n' % (len(payload), zlib.crc32(payload),
                                                                     add_line.rstrip(b"\n"))


class PendingLog:
    """The writer's end of the pending log: opened on the first append, kept open until ``close``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._size = 0

    def append(self, add_line: bytes, payload: Any) -> None:
        """Append one entry (``payload``: the episode's Arrow IPC stream, any buffer).

        If the write fails or comes up short, the log is cut back to where it was and the error raised,
        so a later entry never follows a broken one.
        """
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        parts = [header(add_line, payload), memoryview(payload)]
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
            size, event, fmt, crc = int(head["size"]), head["add"], head.get("format", "parquet"), head.get("crc")
        except (ValueError, TypeError, KeyError, AttributeError):
            return entries
        offset = f.tell()
        if (type(event) is not list or size < 0 or offset + size > end or fmt not in FORMATS
                or not (crc is None or type(crc) is int)):
            return entries
        entries.append(Entry(event, offset, size, fmt, crc))
        f.seek(size, os.SEEK_CUR)


def read_payload(path: Path, entry: Entry) -> bytes | None:
    """The payload of an entry, or None if the log is gone or shorter now, or the bytes fail their CRC."""
    try:
        with open(path, "rb") as f:
            f.seek(entry.offset)
            data = f.read(entry.size)
    except FileNotFoundError:
        return None
    if len(data) != entry.size or (entry.crc is not None and zlib.crc32(data) != entry.crc):
        return None
    return data
