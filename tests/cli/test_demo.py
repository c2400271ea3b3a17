"""`flywheel demo` end to end: repeatable, in its own home, proving that forks share bytes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.demo import MARKER


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("FLYWHEEL_API_KEY", "fw_mine")
    monkeypatch.delenv("FLYWHEEL_DATABASE_URL", raising=False)
    return tmp_path


def run_demo(*args: str) -> str:
    result = CliRunner().invoke(app, ["demo", *args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def blob_files(blobs: Path) -> dict[str, int]:
    """sha256 → how many files in the blob store hold those bytes."""
    counts: dict[str, int] = {}
    for path in blobs.rglob("*"):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            counts[digest] = counts.get(digest, 0) + 1
    return counts


def test_demo_builds_a_tree_with_a_fork_that_shares_bytes(workdir: Path) -> None:
    out = run_demo()
    home = workdir / ".flywheel-demo"
    assert (home / MARKER).is_file() and (home / "flywheel.db").is_file()
    assert not (workdir / "mine").exists()  # the user's own home is never touched
    assert os.environ["FLYWHEEL_HOME"] == str(workdir / "mine")  # and the environment is restored
    lines = out.splitlines()
    assert any("baseline" in line and "3 iterations, 15 assets" in line for line in lines)
    assert any(line.startswith("│   └── wider-net") for line in lines)
    best = next(line for line in lines if line.strip().startswith("best attempt: #")).split("#")[1][0]
    assert any("longer-training" in line and f"⑂ forked from baseline @ #{best}" in line for line in lines)
    same = next(line for line in lines if "same sha256:" in line)
    digest = same.split("same sha256:")[1].strip()
    assert blob_files(home / "blobs")[digest] == 1
    assert "asset rows pointing at these bytes: 2; files on disk holding them: 1" in out
    assert any(line.startswith("asset model.zip") for line in lines)
    assert "FLYWHEEL_HOME=.flywheel-demo flywheel tree drive" in out
    # every file in the blob store holds different bytes: nothing was copied
    assert set(blob_files(home / "blobs").values()) == {1}


def test_demo_is_repeatable(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flywheel.demo import STEPS, create_demo_project
    from flywheel.demo import run_demo as run_steps

    first_steps = STEPS[: STEPS.index(create_demo_project) + 1]  # enough to show the home is rebuilt, not added to
    first = run_steps(Path(".flywheel-demo"), steps=first_steps)
    second = run_steps(Path(".flywheel-demo"), steps=first_steps)
    assert first.ids["project"] != second.ids["project"]
    monkeypatch.setenv("FLYWHEEL_HOME", ".flywheel-demo")
    monkeypatch.delenv("FLYWHEEL_API_KEY")
    listed = CliRunner().invoke(app, ["project", "list", "--json"])
    assert listed.exit_code == 0 and [p["id"] for p in json.loads(listed.stdout)] == [second.ids["project"]]


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(workdir: Path) -> None:
    precious = workdir / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    result = CliRunner().invoke(app, ["demo", "--home", str(precious)])
    assert result.exit_code == 1 and "refusing to wipe it" in result.stderr
    assert (precious / "thesis.tex").read_text() == "years of work"
