"""CLI fixtures: a runner bound to a private home and database (SQLite and PostgreSQL), and a signed-in user."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flywheel.cli import app


class Cli:
    """Runs `flywheel …` in-process and checks exit codes."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: object, input: str | None = None) -> Any:
        """Run a command; returns the Result whatever its exit code."""
        return self.runner.invoke(app, [str(a) for a in args], input=input)

    def ok(self, *args: object, input: str | None = None) -> Any:
        """Run a command that must succeed."""
        result = self(*args, input=input)
        assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
        return result

    def json(self, *args: object) -> Any:
        """Run a command with --json and parse its stdout."""
        return json.loads(self.ok(*args, "--json").stdout)

    def fails(self, *args: object, input: str | None = None) -> Any:
        """Run a command that must fail the user-facing way: exit 1, `error:` and `hint:` lines, no traceback."""
        result = self(*args, input=input)
        assert result.exit_code == 1, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
        assert isinstance(result.exception, SystemExit), f"not a clean exit: {result.exception!r}"
        assert result.stdout == "", result.stdout
        lines = result.stderr.splitlines()
        assert lines and lines[0].startswith("error: "), result.stderr
        assert len(lines) == 2 and lines[1].startswith("hint: "), result.stderr
        assert "Traceback" not in result.output
        return result


@pytest.fixture
def cli(flywheel_home: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on a fresh home and database, with a wide terminal so tables do not wrap."""
    monkeypatch.setenv("COLUMNS", "200")
    return Cli()


@pytest.fixture
def api_key(cli: Cli) -> str:
    """Sign in as a new user "ada" (the key is saved as the CLI's identity)."""
    return cli.json("user", "create", "ada")["api_key"]


@pytest.fixture
def project(cli: Cli, api_key: str) -> dict[str, Any]:
    """A project "look-at" of the signed-in user."""
    return cli.json("project", "create", "look-at", "--description", "Turn the head toward the target.")


@pytest.fixture
def make(cli: Cli, project: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Create an experiment in "look-at": make("name", "--parent", id, …) returns its JSON."""

    def experiment(name: str, *options: object) -> dict[str, Any]:
        return cli.json("experiment", "create", "look-at", name, *options)

    return experiment
