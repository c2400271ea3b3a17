"""The app itself: the error table, help, the console script and `flywheel serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError
from typer.testing import CliRunner

from flywheel.cli import ERRORS, app, explain
from flywheel.errors import Conflict, FlywheelError, IntegrityError, InvalidInput, NotFound, Unauthorized
from tests.cli.conftest import Cli


class _Body(BaseModel):
    count: int = Field(ge=0)


def _validation_error() -> ValidationError:
    try:
        _Body(count=-1)
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("exc", "message", "hint"),
    [
        (InvalidInput("must be 1..5", field="n", allowed="1..5"), "n: must be 1..5 (allowed: 1..5)", "Fix n"),
        (NotFound("project", "x"), "project x not found", "Check the project id"),
        (Conflict("a cycle", hint="Pick another parent."), "a cycle", "Pick another parent."),
        (Unauthorized("no key"), "no key", "flywheel user create <name>"),
        (IntegrityError("blob damaged"), "blob damaged", "re-upload"),
        (FlywheelError("something"), "something", "--help"),
        (_validation_error(), "count: Input should be greater than or equal to 0 (got -1)", "Fix count"),
    ],
)
def test_every_error_kind_has_a_one_line_message_and_fix(exc: Exception, message: str, hint: str) -> None:
    said = explain(exc, "flywheel thing")
    assert said is not None
    assert said[0] == message and hint in said[1]
    assert "\n" not in said[0] + said[1]


def test_bugs_are_not_explained_away() -> None:
    assert explain(RuntimeError("bug")) is None
    assert all(issubclass(kind, Exception) for kind in ERRORS)


def test_an_unreachable_database_is_one_line_without_the_password(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_DATABASE_URL", "postgresql+psycopg://ada:s3cret@127.0.0.1:1/nowhere")
    monkeypatch.setenv("FLYWHEEL_API_KEY", "fw_x")
    result = cli.fails("project", "list")
    assert "cannot use the database postgresql+psycopg://ada:***@127.0.0.1:1/nowhere" in result.stderr
    assert "s3cret" not in result.output and "FLYWHEEL_DATABASE_URL" in result.stderr


@pytest.mark.parametrize(
    "group",
    [[], ["user"], ["project"], ["experiment"], ["iteration"], ["asset"], ["tree"], ["lineage"], ["serve"], ["demo"]],
)
def test_help_for_every_command(group: list[str]) -> None:
    result = CliRunner().invoke(app, [*group, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Usage: " in result.output


def test_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env["FLYWHEEL_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "project", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no identity") and "hint: " in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_serve_runs_uvicorn_on_the_api_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "9123"])
    assert result.exit_code == 0, result.output
    assert calls == [("flywheel.api.app:create_app", {"factory": True, "host": "0.0.0.0", "port": 9123})]
    assert "http://0.0.0.0:9123/api/v1" in result.stderr
    defaults = CliRunner().invoke(app, ["serve"])
    assert defaults.exit_code == 0 and calls[-1][1]["host"] == "127.0.0.1" and calls[-1][1]["port"] == 8000
    assert CliRunner().invoke(app, ["serve", "--port", "70000"]).exit_code == 2
