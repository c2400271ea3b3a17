"""`flywheel experiment …` and `flywheel tree`."""

from __future__ import annotations

from typing import Any

from flywheel.datasets.models import Dataset
from flywheel.platform.users import get_user
from flywheel.store import new_id
from flywheel.store.engine import session_scope
from tests.cli.conftest import Cli


def add_dataset(name: str) -> str:
    """A dataset row (dataset commands arrive in their own issue)."""
    with session_scope() as session:
        ident = new_id("dst")
        session.add(Dataset(id=ident, owner_id=get_user(session, "ada").id, name=name))
    return ident


def parents(cli: Cli) -> dict[str, str | None]:
    return {e["name"]: e["parent_id"] for e in cli.json("experiment", "list", "look-at")}


def test_create_root_and_child_then_list_and_show(cli: Cli, project: dict[str, Any], make: Any) -> None:
    root = make("baseline", "-d", "PPO *defaults*", "--git-repo", "git@x:y.git", "--git-commit", "abc123")
    child = make("wider-net", "--parent", root["id"])
    assert (root["project_id"], root["parent_id"], root["git_commit"]) == (project["id"], None, "abc123")
    assert child["parent_id"] == root["id"]
    assert [e["id"] for e in cli.json("experiment", "list", "look-at")] == [root["id"], child["id"]]
    assert cli.json("experiment", "show", root["id"]) == root
    shown = cli.ok("experiment", "show", root["id"]).stdout
    assert "PPO defaults" in shown and "git@x:y.git @ abc123" in shown
    listed = cli.ok("experiment", "list", "look-at").stdout
    assert child["id"] in listed and "baseline" in listed


def test_create_refuses_bad_input_and_changes_nothing(cli: Cli, project: dict[str, Any], make: Any) -> None:
    make("baseline")
    assert cli.fails("experiment", "create", "look-at", "x", "--config", "novalue").stderr.startswith(
        "error: template_config:"
    )
    assert "template_config" in cli.fails("experiment", "create", "look-at", "x", "--config", "lr=0.1").stderr
    assert "template ppo not found" in cli.fails("experiment", "create", "look-at", "x", "--template", "ppo").stderr
    assert (
        "experiment exp_nope not found"
        in cli.fails("experiment", "create", "look-at", "x", "--parent", "exp_nope").stderr
    )
    assert cli.fails("experiment", "create", "look-at", "").stderr.startswith("error: name:")
    assert "project nope not found" in cli.fails("experiment", "create", "nope", "x").stderr
    assert list(parents(cli)) == ["baseline"]


def test_cross_project_parent_is_a_conflict(cli: Cli, project: dict[str, Any], make: Any) -> None:
    root = make("baseline")
    cli.ok("project", "create", "drive")
    result = cli.fails("experiment", "create", "drive", "x", "--parent", root["id"])
    assert "belongs to another project" in result.stderr
    assert cli.json("experiment", "list", "drive") == []


def test_edit_moves_and_refuses_cycles(cli: Cli, project: dict[str, Any], make: Any) -> None:
    root = make("baseline")
    child = make("child", "--parent", root["id"])
    grandchild = make("grandchild", "--parent", child["id"])
    assert "would make a cycle" in cli.fails("experiment", "edit", root["id"], "--parent", grandchild["id"]).stderr
    assert parents(cli) == {"baseline": None, "child": root["id"], "grandchild": child["id"]}
    moved = cli.json("experiment", "edit", grandchild["id"], "--parent", root["id"], "--name", "gc", "-d", "moved")
    assert (moved["parent_id"], moved["name"], moved["description"]) == (root["id"], "gc", "moved")
    assert cli.json("experiment", "edit", child["id"], "--root")["parent_id"] is None
    assert "nothing to change" in cli.fails("experiment", "edit", child["id"]).stderr
    assert cli.fails("experiment", "edit", child["id"], "--root", "--parent", root["id"]).stderr.startswith(
        "error: parent_id:"
    )


def test_fork_from_a_chosen_iteration_links_its_assets(cli: Cli, project: dict[str, Any], make: Any, tmp_path) -> None:
    root = make("baseline", "-d", "the description")
    iterations = [cli.json("iteration", "create", root["id"]) for _ in range(3)]
    for index, iteration in enumerate(iterations):
        path = tmp_path / f"ckpt{index}.bin"
        path.write_bytes(bytes([index]) * 100)
        cli.ok("asset", "upload", root["id"], path, "--iteration", iteration["id"])
    fork = cli.json("experiment", "fork", root["id"], "from-1", "--from-iteration", "1")
    assert (fork["forked_from_id"], fork["forked_from_iteration_id"]) == (root["id"], iterations[1]["id"])
    assert (fork["description"], fork["next_iteration_index"], fork["parent_id"]) == ("the description", 0, None)
    linked = cli.json("asset", "list", fork["id"])
    source = cli.json("asset", "list", "--iteration", iterations[1]["id"])
    assert [(a["name"], a["blob_hash"], a["linked_from_id"]) for a in linked] == [
        ("ckpt1.bin", source[0]["blob_hash"], source[0]["id"])
    ]
    said = cli.ok("experiment", "fork", root["id"], "latest").stdout
    assert "Forked baseline @ #2" in said and "1 asset(s) linked" in said
    result = cli.fails("experiment", "fork", root["id"], "x", "--from-iteration", "7")
    assert result.stderr.startswith("error: iteration_index:") and "allowed: [0, 1, 2]" in result.stderr


def test_tree_marks_forks_and_counts(cli: Cli, project: dict[str, Any], make: Any) -> None:
    root = make("baseline")
    make("wider-net", "--parent", root["id"])
    cli.ok("iteration", "create", root["id"])
    cli.ok("iteration", "create", root["id"])
    fork = cli.json("experiment", "fork", root["id"], "from-0", "--from-iteration", "0")
    drawn = cli.ok("tree", "look-at").stdout
    assert drawn == cli.ok("experiment", "tree", "look-at").stdout
    lines = drawn.splitlines()
    assert lines[0].startswith("look-at") and project["id"] in lines[0]
    assert any("baseline" in line and "2 iterations, 0 assets" in line for line in lines)
    assert any(line.strip().startswith("│   └── wider-net") for line in lines)
    assert any("from-0" in line and "⑂ forked from baseline @ #0" in line for line in lines)
    data = cli.json("tree", "look-at")
    assert data["project"] == {"id": project["id"], "name": "look-at"}
    assert [(n["name"], [c["name"] for c in n["children"]]) for n in data["roots"]] == [
        ("baseline", ["wider-net"]),
        ("from-0", []),
    ]
    assert data["roots"][1]["forked_from_id"] == root["id"] and fork["id"] == data["roots"][1]["id"]


def test_delete_moves_children_up_or_cascades(cli: Cli, project: dict[str, Any], make: Any) -> None:
    root = make("baseline")
    child = make("child", "--parent", root["id"])
    make("grandchild", "--parent", child["id"])
    aborted = cli("experiment", "delete", child["id"], input="n\n")
    assert aborted.exit_code == 1 and len(parents(cli)) == 3
    cli.ok("experiment", "delete", child["id"], "--yes")
    assert parents(cli) == {"baseline": None, "grandchild": root["id"]}
    said = cli.ok("experiment", "delete", root["id"], "--cascade", input="y\n").stdout
    assert "Deleted 2 experiment(s)" in said
    assert parents(cli) == {}


def test_link_and_unlink_datasets(cli: Cli, project: dict[str, Any], make: Any) -> None:
    root = make("baseline")
    dataset = add_dataset("head-demos")
    assert cli.json("experiment", "link-dataset", root["id"], "head-demos")["dataset_ids"] == [dataset]
    assert cli.json("experiment", "link-dataset", root["id"], dataset)["dataset_ids"] == [dataset]
    assert cli.json("experiment", "fork", root["id"], "f")["dataset_ids"] == [dataset]
    assert cli.json("experiment", "unlink-dataset", root["id"], dataset)["dataset_ids"] == []
    assert "not found" in cli.fails("experiment", "unlink-dataset", root["id"], dataset).stderr
    assert "dataset nope not found" in cli.fails("experiment", "link-dataset", root["id"], "nope").stderr
