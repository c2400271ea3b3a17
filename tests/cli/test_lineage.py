"""`flywheel lineage <id>`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cli.conftest import Cli


def test_asset_lineage_up_to_the_project(cli: Cli, project: dict, make: Any, tmp_path: Path) -> None:
    root = make("baseline")
    iteration = cli.json("iteration", "create", root["id"])
    (tmp_path / "model.bin").write_bytes(b"w")
    asset = cli.json("asset", "upload", root["id"], tmp_path / "model.bin", "--iteration", iteration["id"])
    chain = cli.json("lineage", asset["id"])
    assert [(link["kind"], link["id"]) for link in chain["chain"]] == [
        ("asset", asset["id"]),
        ("iteration", iteration["id"]),
        ("experiment", root["id"]),
        ("project", project["id"]),
    ]
    assert chain["produced_by"] == []
    lines = cli.ok("lineage", asset["id"]).stdout.splitlines()
    assert lines[0].startswith("asset model.bin")
    assert lines[1].startswith("└─ iteration #0") and lines[3].strip().startswith("└─ project look-at")


def test_lineage_of_other_kinds_and_bad_ids(cli: Cli, project: dict, make: Any) -> None:
    root = make("baseline")
    assert [link["kind"] for link in cli.json("lineage", root["id"])["chain"]] == ["experiment", "project"]
    assert [link["kind"] for link in cli.json("lineage", project["id"])["chain"]] == ["project"]
    result = cli.fails("lineage", "what")
    assert result.stderr.startswith("error: id: cannot tell what 'what' is") and "ast_…" in result.stderr
    assert "asset ast_nope not found" in cli.fails("lineage", "ast_nope").stderr
