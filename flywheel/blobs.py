"""A content-addressed blob store: files named by their sha256, written crash-safely.

Bytes go to a temporary file in `tmp/`, are fsynced, then renamed to `ab/cdef…` — so a blob is either
complete under its name or not there at all. A crash leaves at most a temporary file, swept on open.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from flywheel.durable import fsync_dir
from flywheel.errors import IntegrityError, InvalidInput, NotFound

CHUNK = 1 << 20
_HASH = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    """A folder of blobs named by sha256.

    Example:
        >>> store = BlobStore(Path(tempfile.mkdtemp()))
        >>> digest, size = store.put_bytes(b"hello")
        >>> store.read_bytes(digest)
        b'hello'
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def pin(self) -> int:
        """Hold off blob deletion until `unpin`: taken by a writer from storing bytes until its row commits.

        Deleters (`deletion_lock`) need the lock exclusively, so a blob cannot vanish between an upload
        finding it already stored and the upload's asset row becoming visible. Returns a handle for `unpin`.
        """
        fd = os.open(self.root / ".gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    @staticmethod
    def unpin(handle: int) -> None:
        """Release a `pin`."""
        os.close(handle)

    @contextmanager
    def deletion_lock(self, *, wait: bool = False) -> Iterator[bool]:
        """Exclusive right to delete blobs; yields False (and deletes nothing) if a writer holds a pin.

        Without `wait`, a busy store is skipped: the blob stays as an orphan for `collect_garbage` later.
        """
        fd = os.open(self.root / ".gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def path(self, digest: str) -> Path:
        """Where the blob `digest` lives (whether or not it exists)."""
        if not _HASH.match(digest):
            raise InvalidInput("not a sha256 hex digest", field="blob_hash", allowed="64 lowercase hex chars")
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        """True when the blob is stored."""
        return self.path(digest).is_file()

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store the bytes of `chunks`; returns (sha256, size). Storing the same bytes twice keeps one copy."""
        hasher = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            final = self.path(digest)
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
                fsync_dir(final.parent)
            return digest, size
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_file(self, source: Path | BinaryIO) -> tuple[str, int]:
        """Store a file (a path or an open binary file); returns (sha256, size)."""
        if isinstance(source, Path | str):
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"no such file: {path}", field="path")
            with path.open("rb") as handle:
                return self.put_stream(iter(lambda: handle.read(CHUNK), b""))
        return self.put_stream(iter(lambda: source.read(CHUNK), b""))

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store `data`; returns (sha256, size)."""
        return self.put_stream([data])

    def open(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading."""
        path = self.path(digest)
        if not path.is_file():
            raise NotFound("blob", digest)
        return path.open("rb")

    def iter_bytes(self, digest: str) -> Iterator[bytes]:
        """The blob's bytes in chunks (for streaming downloads)."""
        with self.open(digest) as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    def read_bytes(self, digest: str) -> bytes:
        """The blob's bytes."""
        with self.open(digest) as handle:
            return handle.read()

    def verify(self, digest: str) -> None:
        """Raise IntegrityError if the stored bytes no longer hash to `digest`."""
        hasher = hashlib.sha256()
        for chunk in self.iter_bytes(digest):
            hasher.update(chunk)
        if hasher.hexdigest() != digest:
            raise IntegrityError(f"blob {digest} is damaged: its bytes hash to {hasher.hexdigest()}")

    def delete(self, digest: str) -> bool:
        """Remove a blob; True if it was there. Callers check references first (see platform.assets)."""
        path = self.path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def sweep_temporaries(self) -> int:
        """Remove temporary files left by crashed writes; returns how many. Safe only with no writer running."""
        removed = 0
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest."""
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                for blob in sub.iterdir():
                    yield sub.name + blob.name


def get_blob_store() -> BlobStore:
    """The blob store named by the settings."""
    from flywheel.settings import get_settings

    return BlobStore(get_settings().resolved_blob_dir())
