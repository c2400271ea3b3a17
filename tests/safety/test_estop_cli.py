"""`flywheel estop` (both backends): stop, status, reset, another user's reset, bad input."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_stop_status_reset(cli: Cli, monkeypatch) -> None:
    cli.json("user", "create", "ada")
    out = cli.ok("estop", "--reason", "person in the cell").stdout
    assert "EMERGENCY STOP latched: every device (*)" in out and "person in the cell" in out
    status = cli.json("estop", "status", "--scope", "reachy-01")
    assert status["latched"] is True and status["latches"][0]["held_by_name"] == "ada"
    assert "LATCHED" in cli.ok("estop", "status").stdout
    reset = cli.json("estop", "reset", "--reason", "clear")
    assert reset["latched"] is False and reset["events"][0]["action"] == "reset"
    assert "Not latched" in cli.ok("estop", "status").stdout


def test_another_users_reset_fails_with_a_hint_then_force_works(cli: Cli, monkeypatch) -> None:
    cli.json("user", "create", "ada")
    grace = cli.json("user", "create", "grace", "--no-save")["api_key"]
    cli.ok("estop", "--scope", "car-1")
    monkeypatch.setenv("FLYWHEEL_API_KEY", grace)
    failed = cli.fails("estop", "reset", "--scope", "car-1")
    assert "held by ada" in failed.stderr and "force" in failed.stderr
    assert cli.json("estop", "status", "--scope", "car-1")["latched"] is True
    forced = cli.json("estop", "reset", "--scope", "car-1", "--force", "--reason", "checked the car")
    assert forced["latched"] is False and forced["events"][0]["forced"] is True


def test_bad_input_and_no_identity(cli: Cli) -> None:
    assert "flywheel user create" in cli.fails("estop").stderr  # who pressed it must be known
    cli.json("user", "create", "ada")
    failed = cli.fails("estop", "--scope", "a b")
    assert "scope" in failed.stderr
    assert cli.json("estop", "status")["events"] == []
    cli.fails("estop", "reset")  # not latched
