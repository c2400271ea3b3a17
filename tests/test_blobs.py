"""The content-addressed blob store: hashing, dedup, crash safety."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flywheel.blobs import BlobStore
from flywheel.errors import IntegrityError, InvalidInput, NotFound


def test_put_and_read_round_trip_names_blob_by_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest, size = store.put_bytes(b"policy weights")
    assert digest == hashlib.sha256(b"policy weights").hexdigest()
    assert size == 14
    assert store.read_bytes(digest) == b"policy weights"
    assert store.path(digest) == tmp_path / digest[:2] / digest[2:]


def test_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first, _ = store.put_bytes(b"a" * 10_000)
    second, _ = store.put_stream([b"a" * 5_000, b"a" * 5_000])
    assert first == second
    assert list(store.digests()) == [first]
    assert list(store.tmp.iterdir()) == []


def test_put_file_streams_large_files(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = bytes(range(256)) * 20_000  # 5 MB, several chunks
    source.write_bytes(data)
    store = BlobStore(tmp_path / "blobs")
    digest, size = store.put_file(source)
    assert size == len(data)
    assert b"".join(store.iter_bytes(digest)) == data


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)

    def broken() -> list[bytes]:
        yield b"half of it"
        raise OSError("disk unplugged")

    with pytest.raises(OSError, match="disk unplugged"):
        store.put_stream(broken())
    assert list(store.digests()) == []
    assert list(store.tmp.iterdir()) == []


def test_damaged_blob_is_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest, _ = store.put_bytes(b"original")
    store.verify(digest)
    store.path(digest).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=digest):
        store.verify(digest)


def test_bad_digest_and_missing_blob_are_refused(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(InvalidInput, match="blob_hash"):
        store.path("../../etc/passwd")
    with pytest.raises(NotFound):
        store.read_bytes("0" * 64)
    assert store.delete("0" * 64) is False


def test_sweep_removes_leftover_temporaries(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    (store.tmp / "upload-crashed").write_bytes(b"partial")
    assert store.sweep_temporaries() == 1
    assert list(store.tmp.iterdir()) == []
