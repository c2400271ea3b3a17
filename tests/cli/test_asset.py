"""`flywheel asset upload|download|tag|untag|delete|list`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from flywheel.blobs import get_blob_store
from tests.cli.conftest import Cli


@pytest.fixture
def experiment(make: Any) -> dict[str, Any]:
    return make("baseline")


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoint.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several chunks
    return path


def test_upload_then_download_the_same_bytes(cli: Cli, experiment: dict, checkpoint: Path, tmp_path: Path) -> None:
    asset = cli.json("asset", "upload", experiment["id"], checkpoint, "--tag", "checkpoint", "-t", "best")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert (asset["name"], asset["blob_hash"], asset["size"]) == ("checkpoint.bin", digest, checkpoint.stat().st_size)
    assert asset["tags"] == ["best", "checkpoint"]
    out = tmp_path / "out"
    said = cli.ok("asset", "download", asset["id"], "--output", f"{out}/").stdout
    assert (out / "checkpoint.bin").read_bytes() == checkpoint.read_bytes()
    assert "Downloaded checkpoint.bin" in said
    assert "already exists" in cli.fails("asset", "download", asset["id"], "-o", out / "checkpoint.bin").stderr
    (out / "checkpoint.bin").write_bytes(b"old")
    cli.ok("asset", "download", asset["id"], "-o", out / "checkpoint.bin", "--force")
    assert (out / "checkpoint.bin").read_bytes() == checkpoint.read_bytes()
    assert [p.name for p in out.iterdir()] == ["checkpoint.bin"]  # no temporary files left


def test_download_refuses_damaged_bytes(cli: Cli, experiment: dict, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"good bytes")
    asset = cli.json("asset", "upload", experiment["id"], path, "--name", "renamed.bin")
    get_blob_store().path(asset["blob_hash"]).write_bytes(b"bad bytes!")
    result = cli.fails("asset", "download", asset["id"], "-o", tmp_path / "copy.bin")
    assert "damaged" in result.stderr
    assert not (tmp_path / "copy.bin").exists()


def test_upload_bad_input_creates_nothing(cli: Cli, experiment: dict, checkpoint: Path, tmp_path: Path) -> None:
    assert cli.fails("asset", "upload", experiment["id"], tmp_path / "missing.bin").stderr.startswith("error: path:")
    assert cli.fails("asset", "upload", experiment["id"], checkpoint, "--tag", "bad tag").stderr.startswith(
        "error: tags"
    )
    assert "not found" in cli.fails("asset", "upload", "exp_nope", checkpoint).stderr
    other = cli.json("iteration", "create", cli.json("experiment", "create", "look-at", "other")["id"])
    result = cli.fails("asset", "upload", experiment["id"], checkpoint, "--iteration", other["id"])
    assert result.stderr.startswith("error: iteration_id:")
    assert cli.json("asset", "list", experiment["id"]) == []
    assert list(get_blob_store().digests()) == []


def test_tags_and_filtered_lists(cli: Cli, experiment: dict, tmp_path: Path) -> None:
    iteration = cli.json("iteration", "create", experiment["id"])
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.bin").write_bytes(b"b")
    a = cli.json("asset", "upload", experiment["id"], tmp_path / "a.json", "-t", "config")
    b = cli.json("asset", "upload", experiment["id"], tmp_path / "b.bin", "--iteration", iteration["id"])
    assert cli.json("asset", "tag", b["id"], "best", "final")["tags"] == ["best", "final"]
    assert cli.json("asset", "untag", b["id"], "final")["tags"] == ["best"]
    assert [x["id"] for x in cli.json("asset", "list", experiment["id"])] == [a["id"], b["id"]]
    assert [x["id"] for x in cli.json("asset", "list", experiment["id"], "--tag", "best")] == [b["id"]]
    assert [x["id"] for x in cli.json("asset", "list", "--iteration", iteration["id"])] == [b["id"]]
    table = cli.ok("asset", "list", experiment["id"]).stdout
    assert b["blob_hash"][:12] in table and "a.json" in table
    assert cli.fails("asset", "tag", b["id"], "no spaces").stderr.startswith("error: tag:")
    assert cli.fails("asset", "list").stderr.startswith("error: experiment_id:")


def test_delete_keeps_bytes_another_asset_uses(cli: Cli, experiment: dict, checkpoint: Path) -> None:
    iteration = cli.json("iteration", "create", experiment["id"])
    asset = cli.json("asset", "upload", experiment["id"], checkpoint, "--iteration", iteration["id"])
    fork = cli.json("experiment", "fork", experiment["id"], "fork")
    linked = cli.json("asset", "list", fork["id"])[0]
    blob = get_blob_store().path(asset["blob_hash"])
    assert cli("asset", "delete", asset["id"], input="n\n").exit_code == 1
    said = cli.ok("asset", "delete", asset["id"], input="y\n").stdout
    assert "its bytes stay: 1 other asset(s) use them" in said and blob.is_file()
    cli.ok("asset", "delete", linked["id"], "--yes")
    assert not blob.exists()
    assert cli.json("asset", "list", fork["id"]) == []


def test_gc_removes_unused_bytes_only(cli: Cli, experiment: dict, checkpoint: Path) -> None:
    asset = cli.json("asset", "upload", experiment["id"], checkpoint)
    orphan, _ = get_blob_store().put_bytes(b"left behind by a deletion that met an upload")
    assert "Removed 1 unused blob(s)." in cli.ok("asset", "gc").stdout
    assert not get_blob_store().exists(orphan) and get_blob_store().exists(asset["blob_hash"])
    assert "Nothing to remove" in cli.ok("asset", "gc").stdout
