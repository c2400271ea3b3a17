"""`flywheel iteration create|list|show|note`."""

from __future__ import annotations

from typing import Any

from tests.cli.conftest import Cli


def test_indexes_are_sequential_and_show_finds_by_id_or_index(cli: Cli, make: Any) -> None:
    root = make("baseline")
    created = [cli.json("iteration", "create", root["id"], "--notes", f"try {i}") for i in range(3)]
    assert [i["index"] for i in created] == [0, 1, 2]
    assert cli.json("iteration", "list", root["id"]) == created
    assert cli.json("iteration", "show", created[1]["id"]) == created[1]
    assert cli.json("iteration", "show", root["id"], "--index", "2") == created[2]
    table = cli.ok("iteration", "list", root["id"]).stdout
    assert "#2" in table and "try 2" in table
    assert "notes" in cli.ok("iteration", "show", created[0]["id"]).stdout


def test_inputs_may_come_from_other_experiments(cli: Cli, make: Any, tmp_path: Any) -> None:
    root, other = make("baseline"), make("other")
    source = cli.json("iteration", "create", root["id"])
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    asset = cli.json("asset", "upload", root["id"], path, "--iteration", source["id"])
    iteration = cli.json("iteration", "create", other["id"], "--input-asset", asset["id"])
    assert iteration["input_asset_ids"] == [asset["id"]]
    assert cli.json("iteration", "show", source["id"])["output_asset_ids"] == [asset["id"]]


def test_notes_replace_or_append(cli: Cli, make: Any) -> None:
    iteration = cli.json("iteration", "create", make("baseline")["id"], "--notes", "first")
    assert cli.json("iteration", "note", iteration["id"], "second", "--append")["notes"] == "first\nsecond"
    assert cli.json("iteration", "note", iteration["id"], "only")["notes"] == "only"
    assert "saved" in cli.ok("iteration", "note", iteration["id"], "x").stdout


def test_bad_input_names_the_field_and_creates_nothing(cli: Cli, make: Any) -> None:
    root = make("baseline")
    assert cli.fails("iteration", "create", root["id"], "--config", "lr").stderr.startswith("error: config_overrides:")
    assert cli.fails("iteration", "create", root["id"], "--config", "lr=1").stderr.startswith(
        "error: config_overrides:"
    )
    assert (
        "asset ast_nope not found" in cli.fails("iteration", "create", root["id"], "--input-asset", "ast_nope").stderr
    )
    assert "experiment exp_nope not found" in cli.fails("iteration", "create", "exp_nope").stderr
    assert cli.json("iteration", "list", root["id"]) == []
    assert cli.json("iteration", "create", root["id"])["index"] == 0
    assert "iteration" in cli.fails("iteration", "show", root["id"], "--index", "5").stderr
    assert "iteration itr_nope not found" in cli.fails("iteration", "note", "itr_nope", "x").stderr
