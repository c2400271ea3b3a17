"""`flywheel user` and how the CLI finds its identity."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flywheel.platform.models import User
from flywheel.store.engine import session_scope
from tests.cli.conftest import Cli


def user_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_create_prints_the_key_once_and_saves_it_owner_only(cli: Cli, flywheel_home: Path) -> None:
    result = cli.ok("user", "create", "ada", "--spend-limit", "25")
    credentials = flywheel_home / "credentials"
    key = credentials.read_text().strip()
    assert key.startswith("fw_")
    assert result.stdout.count(key) == 1
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    me = cli.json("user", "whoami")
    assert me["name"] == "ada"
    assert me["spend_limit_usd"] == 25
    assert me["key_source"] == str(credentials)


def test_no_save_leaves_the_identity_alone(cli: Cli, flywheel_home: Path, api_key: str) -> None:
    other = cli.json("user", "create", "grace", "--no-save")
    assert other["api_key"] != api_key
    assert (flywheel_home / "credentials").read_text().strip() == api_key
    assert cli.json("user", "whoami")["name"] == "ada"


def test_env_key_wins_over_the_saved_key(cli: Cli, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    grace = cli.json("user", "create", "grace", "--no-save")
    monkeypatch.setenv("FLYWHEEL_API_KEY", grace["api_key"])
    me = cli.json("user", "whoami")
    assert (me["name"], me["key_source"]) == ("grace", "FLYWHEEL_API_KEY")


def test_without_identity_commands_say_how_to_get_one(cli: Cli) -> None:
    result = cli.fails("project", "list")
    assert "no identity" in result.stderr
    assert "flywheel user create <name>" in result.stderr


def test_an_unknown_key_is_refused(cli: Cli, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_API_KEY", "fw_not-a-real-key")
    result = cli.fails("user", "whoami")
    assert "FLYWHEEL_API_KEY" in result.stderr and "matches no user" in result.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [(["bad name!"], "name"), (["ada", "--spend-limit", "-5"], "spend_limit_usd")],
)
def test_bad_input_names_the_field_and_creates_nothing(
    cli: Cli, flywheel_home: Path, args: list[str], field: str
) -> None:
    result = cli.fails("user", "create", *args)
    assert result.stderr.startswith(f"error: {field}:")
    assert "flywheel user create --help" in result.stderr
    assert not (flywheel_home / "credentials").exists()
    assert user_count() == 0


def test_a_taken_name_is_a_conflict(cli: Cli, api_key: str, flywheel_home: Path) -> None:
    result = cli.fails("user", "create", "ada")
    assert "already exists" in result.stderr
    assert (flywheel_home / "credentials").read_text().strip() == api_key
    assert user_count() == 1
