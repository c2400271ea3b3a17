"""Crash-safe file primitives for every part of Flywheel: temp file + fsync + rename, fsynced appends, locks.

Temporary files are named ``.<name>.tmp-<pid>`` next to their target, so an interrupted write never leaves a
file under a name a reader looks at, and the next writer can find the leftovers
(``flywheel.datasets.writer.uncommitted_files``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from flywheel.errors import Conflict

TEMP_MARK = ".tmp-"


def temp_path(path: Path) -> Path:
    """The temporary name a write of ``path`` goes to before its rename.

    Example:
        >>> temp_path(Path("meta/info.json")).name.startswith(".info.json.tmp-")
        True
    """
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def fsync_dir(path: Path) -> None:
    """fsync a folder so a rename inside it survives a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync one file's data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_temp(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it onto ``path`` and fsync the folder."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old bytes or the new, never a mix.

    Example:
        >>> write_atomic(Path("/tmp/fw-example.txt"), b"hello")
        >>> Path("/tmp/fw-example.txt").read_bytes()
        b'hello'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def copy_atomic(source: Path, path: Path) -> None:
    """Copy ``source`` onto ``path`` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        shutil.copyfile(source, tmp)
        commit_temp(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_unsynced(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically without fsync: for files derived from a durable source.

    A process crash leaves the old or the new bytes; only a power loss can leave less, and the
    file is then rebuilt from its source (``meta.sync_meta``).
    """
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def append_bytes(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Append ``data`` to ``path`` with one ``write`` in append mode, fsynced unless ``sync`` is False.

    One ``write`` of a whole line in ``O_APPEND`` mode is never interleaved with another writer's line.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


class FolderLock:
    """An exclusive ``flock`` on a lock file, released on close (and by the OS if the process dies).

    Example:
        >>> with FolderLock(Path("/tmp/fw-example.lock"), what="dataset writer"):
        ...     pass
    """

    def __init__(self, path: Path, *, what: str, blocking: bool = False) -> None:
        self.path = path
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise Conflict(f"{what} is busy: another process holds {path}",
                               hint="wait for the other writer or compaction to finish") from None
            # The folder may have been swapped (compaction) while we waited: lock the file now at `path`.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd: int | None = fd
                return
            os.close(fd)

    def close(self) -> None:
        """Release the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def locked(path: Path, *, what: str, blocking: bool = False) -> Iterator[FolderLock]:
    """Hold a ``FolderLock`` for the duration of a ``with`` block."""
    lock = FolderLock(path, what=what, blocking=blocking)
    try:
        yield lock
    finally:
        lock.close()
