"""Pending log: entries read back in order; a torn tail or a failed append never hides or breaks an entry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flywheel.datasets.pending import PendingLog, read_entries, read_payload


def write(path: Path, *payloads: bytes) -> None:
    log = PendingLog(path)
    for i, payload in enumerate(payloads):
        log.append(b'["add",%d]\n' % i, payload)
    log.close()


def test_entries_read_back_in_order_with_their_payloads(tmp_path: Path) -> None:
    path = tmp_path / "pending.log"
    assert read_entries(path) == []
    write(path, b"PAR1 first PAR1", b"", b"\n{not json}\n")
    entries = read_entries(path)
    assert [e.event for e in entries] == [["add", 0], ["add", 1], ["add", 2]]
    assert [read_payload(path, e) for e in entries] == [b"PAR1 first PAR1", b"", b"\n{not json}\n"]


@pytest.mark.parametrize("cut", [1, 5, 20, 40])
def test_a_torn_tail_ends_the_log(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "pending.log"
    write(path, b"a" * 30, b"b" * 30)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])  # a kill (or a power loss) in the middle of the second append
    assert [e.event for e in read_entries(path)] == [["add", 0]]


def test_a_failed_append_leaves_the_log_as_it_was(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "pending.log"
    log = PendingLog(path)
    log.append(b'["add",0]\n', b"first")
    real_writev = os.writev

    def short_writev(fd: int, parts: list) -> int:
        return real_writev(fd, [bytes(parts[0])])  # the header only: a short write

    monkeypatch.setattr(os, "writev", short_writev)
    with pytest.raises(OSError, match="short write"):
        log.append(b'["add",1]\n', b"second")
    monkeypatch.undo()
    log.append(b'["add",1]\n', b"again")
    log.close()
    entries = read_entries(path)
    assert [e.event for e in entries] == [["add", 0], ["add", 1]]
    assert read_payload(path, entries[1]) == b"again"
    assert read_payload(tmp_path / "gone.log", entries[1]) is None


def test_a_payload_that_fails_its_crc_reads_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "pending.log"
    write(path, b"x" * 100)
    (entry,) = read_entries(path)
    data = bytearray(path.read_bytes())
    data[entry.offset + 50] ^= 1  # one bit a power loss garbled
    path.write_bytes(bytes(data))
    assert read_entries(path) == [entry] and read_payload(path, entry) is None


def test_entries_of_the_previous_format_are_parquet_and_an_unknown_format_ends_the_log(tmp_path: Path) -> None:
    path = tmp_path / "pending.log"
    path.write_bytes(b'{"size":4,"add":["add",0]}\nPAR1' + b'{"size":1,"format":"zip","add":["add",1]}\nz')
    (entry,) = read_entries(path)
    assert (entry.format, entry.crc, read_payload(path, entry)) == ("parquet", None, b"PAR1")
