"""`flywheel project create|list|show|edit|delete`."""

from __future__ import annotations

from typing import Any

from flywheel.datasets.models import Dataset
from flywheel.jobs.models import Job
from flywheel.platform.users import get_user
from flywheel.store import new_id
from flywheel.store.engine import session_scope
from tests.cli.conftest import Cli


def names(cli: Cli) -> list[str]:
    return [p["name"] for p in cli.json("project", "list")]


def add_eval(experiment_id: str) -> str:
    """An eval of `experiment_id` (evals are made by jobs, which arrive later: insert the row)."""
    with session_scope() as session:
        ident = new_id("dst")
        owner = get_user(session, "ada").id
        session.add(Dataset(id=ident, owner_id=owner, name=ident, generated_by_experiment_id=experiment_id))
    return ident


def test_create_list_show(cli: Cli, project: dict[str, Any]) -> None:
    assert project["name"] == "look-at"
    assert project["description"] == "Turn the head toward the target."
    assert [p["id"] for p in cli.json("project", "list")] == [project["id"]]
    assert cli.json("project", "show", "look-at") == cli.json("project", "show", project["id"]) == project
    table = cli.ok("project", "list").stdout
    assert project["id"] in table and "look-at" in table
    shown = cli.ok("project", "show", "look-at").stdout
    assert "Turn the head toward the target." in shown and "no experiments yet" in shown


def test_empty_list_says_what_to_do(cli: Cli, api_key: str) -> None:
    assert cli.json("project", "list") == []
    assert "flywheel project create" in cli.ok("project", "list").stdout


def test_edit_name_and_description(cli: Cli, project: dict[str, Any]) -> None:
    edited = cli.json("project", "edit", "look-at", "--name", "look-at-v2", "-d", "# New")
    assert (edited["id"], edited["name"], edited["description"]) == (project["id"], "look-at-v2", "# New")
    assert names(cli) == ["look-at-v2"]


def test_edit_showcases_from_evals_of_the_project(cli: Cli, project: dict[str, Any], make: Any) -> None:
    evals = [add_eval(make("baseline")["id"]) for _ in range(6)]
    edited = cli.json("project", "edit", "look-at", "--showcase", f"{evals[0]}:3", "--showcase", evals[1])
    assert [(s["eval_id"], s["episode_index"]) for s in edited["showcases"]] == [(evals[0], 3), (evals[1], 0)]
    six = [arg for e in evals for arg in ("--showcase", e)]
    assert "at most 5" in cli.fails("project", "edit", "look-at", *six).stderr
    assert len(cli.json("project", "show", "look-at")["showcases"]) == 2
    assert cli.json("project", "edit", "look-at", "--no-showcases")["showcases"] == []


def test_bad_edits_name_the_field_and_change_nothing(cli: Cli, project: dict[str, Any]) -> None:
    assert "nothing to change" in cli.fails("project", "edit", "look-at").stderr
    assert cli.fails("project", "edit", "look-at", "--showcase", "dst_x:first").stderr.startswith("error: showcases:")
    assert cli.fails("project", "edit", "look-at", "--name", "a/b").stderr.startswith("error: name:")
    assert "dataset dst_nope not found" in cli.fails("project", "edit", "look-at", "--showcase", "dst_nope").stderr
    assert cli.json("project", "show", "look-at") == project


def test_create_refuses_bad_and_taken_names(cli: Cli, project: dict[str, Any]) -> None:
    assert cli.fails("project", "create", "").stderr.startswith("error: name:")
    assert "already have a project named 'look-at'" in cli.fails("project", "create", "look-at").stderr
    assert names(cli) == ["look-at"]


def test_unknown_project_is_not_found(cli: Cli, api_key: str) -> None:
    result = cli.fails("project", "show", "nope")
    assert "project nope not found" in result.stderr and "flywheel project list" in result.stderr


def test_delete_asks_first(cli: Cli, project: dict[str, Any], make: Any) -> None:
    make("baseline")
    refused = cli("project", "delete", "look-at", input="n\n")
    assert refused.exit_code == 1 and "1 experiment(s)" in refused.output
    assert names(cli) == ["look-at"]
    cli.ok("project", "delete", "look-at", input="y\n")
    assert names(cli) == []


def test_delete_with_a_running_job_needs_force(cli: Cli, project: dict[str, Any], make: Any) -> None:
    experiment = make("baseline")
    with session_scope() as session:
        owner = get_user(session, "ada").id
        session.add(
            Job(id=new_id("job"), owner_id=owner, experiment_id=experiment["id"], iteration_index=0, status="running")
        )
    result = cli.fails("project", "delete", "look-at", "--yes")
    assert "1 job(s) queued or running" in result.stderr and "--force" in result.stderr
    assert names(cli) == ["look-at"]
    cli.ok("project", "delete", "look-at", "--yes", "--force")
    assert names(cli) == []


def test_other_users_projects_are_invisible(cli: Cli, project: dict[str, Any], monkeypatch: Any) -> None:
    grace = cli.json("user", "create", "grace", "--no-save")
    monkeypatch.setenv("FLYWHEEL_API_KEY", grace["api_key"])
    assert cli.json("project", "list") == []
    assert "not found" in cli.fails("project", "show", project["id"]).stderr
    assert "not found" in cli.fails("project", "delete", project["id"], "--yes").stderr
