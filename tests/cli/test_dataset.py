"""`flywheel dataset …` end to end, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from flywheel.platform.schemas import UserCreate
from flywheel.platform.users import create_user
from tests.cli.conftest import Cli
from tests.datasets.test_catalog import write_folder

FEATURES_YAML = """\
features:
  observation.state: {dtype: float32, shape: [2], names: [shoulder, elbow]}
  action: {dtype: float32, shape: [2]}
"""


def record(cli: Cli, name: str = "arm", *extra: object, episodes: int = 3, source: str = "sine") -> dict[str, Any]:
    return cli.json("dataset", "record", name, "--source", source, "--episodes", episodes, "--frames", 10,
                    "--fps", 10, "--task", "wave", "--fast", *extra)


def test_create_record_query_and_edit(cli: Cli, api_key: str, tmp_path: Path) -> None:
    spec = tmp_path / "features.yaml"
    spec.write_text(FEATURES_YAML)
    created = cli.json("dataset", "create", "demos", "--features", spec, "--fps", 10, "--robot-type", "so100")
    assert (created["episodes"], created["fps"], created["features"]["action"]["shape"]) == (0, 10, [2])
    assert "Created dataset demos" in cli.ok("dataset", "create", "demos2", "--features", spec).stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"action": {"dtype": "float16", "shape": [2]}}))
    assert "features.action.dtype" in cli.fails("dataset", "create", "bad", "--features", bad).stderr
    assert "--features FILE | --from FOLDER" in cli.fails("dataset", "create", "bad").stderr

    recorded = record(cli, "demos")
    assert (recorded["chunk_id"], recorded["episodes_added"], recorded["dataset"]["frames"]) == (0, 3, 30)
    out = cli.ok("dataset", "record", "arm", "--episodes", 2, "--frames", 5, "--fps", 10, "--fast").stdout
    assert "Recorded 2 episode(s), 10 frames (record) as chunk 0." in out
    record(cli, "demos", episodes=1)
    assert [e["episode_index"] for e in cli.json("dataset", "query", "demos", "--chunk", 1)] == [3]

    assert "now shows frames 2..8 of 10" in cli.ok("dataset", "trim", "demos", 0, "--start", 2, "--end", 8).stdout
    err = cli.fails("dataset", "trim", "demos", 0, "--start", 2, "--end", 11).stderr
    assert "start_frame/end_frame" in err and "0 <= start < end <= 10" in err
    assert "episode 9 not found" in cli.fails("dataset", "trim", "demos", 9, "--start", 0, "--end", 1).stderr
    assert "Soft-deleted episode(s) 1, 2." in cli.ok("dataset", "delete-episodes", "demos", 1, 2).stdout
    assert [e["episode_index"] for e in cli.json("dataset", "query", "demos")] == [0, 3]
    assert [e["episode_index"] for e in cli.json("dataset", "query", "demos", "--deleted", "yes")] == [1, 2]
    cli.ok("dataset", "undelete", "demos", 2)
    assert [e["episode_index"] for e in cli.json("dataset", "query", "demos", "--after", "2000-01-01")] == [0, 2, 3]
    assert cli.json("dataset", "query", "demos", "--before", "2000-01-01") == []
    assert "deleted: Input should be 'no', 'yes' or 'any'" in cli.fails(
        "dataset", "query", "demos", "--deleted", "maybe").stderr
    table = cli.ok("dataset", "query", "demos", "--task", "wave").stdout
    assert "2..8/10" in table and "recorder" in table
    shown = cli.json("dataset", "show", "demos")
    assert (shown["episodes"], shown["deleted_episodes"], shown["chunks"], shown["frames"]) == (3, 1, 2, 26)
    assert [d["name"] for d in cli.json("dataset", "list")] == ["demos", "demos2", "arm"]
    assert "teleop" in cli.fails("dataset", "record", "x", "--source", "teleop").stderr


def test_import_append_upload_export(cli: Cli, api_key: str, tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin

    from tests.datasets.test_rosbag import robot_streams, write_bag

    record(cli, "arm", episodes=2)
    lerobot = cli.json("dataset", "export", "arm", "--format", "lerobot", "--output", tmp_path / "le")
    assert (lerobot["episodes"], lerobot["frames"]) == (2, 20)
    assert json.loads((tmp_path / "le.manifest.json").read_text())["format"] == "lerobot-v2.1"
    out = cli.ok("dataset", "export", "arm", "--format", "rlds-jsonl", "--output", tmp_path / "a.jsonl").stdout
    assert "Exported 2 episode(s), 20 frames as rlds-jsonl" in out
    cli.ok("dataset", "export", "arm", "-f", "tfrecord", "-o", tmp_path / "a.tfrecord")
    err = cli.fails("dataset", "export", "arm", "--format", "hdf5").stderr
    assert "['lerobot', 'rlds-jsonl', 'tfrecord']" in err

    up = cli.json("dataset", "create", "pusht", "--from", tmp_path / "le")
    assert (up["format"], up["episodes_added"]) == ("lerobot", 2)
    imported = cli.ok("dataset", "import", "runs", tmp_path / "a.jsonl").stdout
    assert "Imported 2 episode(s), 20 frames (rlds-jsonl) as chunk 0." in imported
    assert "2/2 episodes valid, 20 steps" in imported
    assert cli.json("dataset", "import", "tf", tmp_path / "a.tfrecord")["episodes_added"] == 2
    bag = write_bag(tmp_path / "run1", StoragePlugin.SQLITE3, robot_streams())
    rosbag = cli.json("dataset", "import", "bag", bag, "--fps", 20, "--task", "drive",
                      "--topic", "/joints:observation.state:position", "--topic", "/cmd_vel:action:linear,angular")
    assert (rosbag["format"], rosbag["dataset"]["features"]["action"]["shape"]) == ("rosbag", [6])
    assert "topic" in cli.fails("dataset", "import", "bag2", bag, "--fps", 20, "--topic", "/joints").stderr

    appended = cli.json("dataset", "append", "arm", tmp_path / "a.tfrecord")
    assert (appended["chunk_id"], appended["dataset"]["episodes"]) == (1, 4)
    write_folder(tmp_path / "other")
    err = cli.fails("dataset", "append", "arm", tmp_path / "other").stderr
    assert "features.action: the source has float32 [1], the dataset float32 [2]" in err
    assert "format" in cli.fails("dataset", "append", "arm", tmp_path / "a.jsonl", "--format", "csv").stderr
    assert cli.json("dataset", "show", "arm")["episodes"] == 4


def test_compact_verify_stats_render_delete(cli: Cli, api_key: str, tmp_path: Path) -> None:
    record(cli, "cam", episodes=3, source="sine-camera")
    cli.ok("dataset", "delete-episodes", "cam", 0)
    cli.ok("dataset", "trim", "cam", 1, "--start", 0, "--end", 5)
    stats = cli.json("dataset", "stats", "cam")
    assert (stats["frames"], stats["features"]["action"]["count"]) == (15, [15])
    assert "observation.state" in cli.ok("dataset", "stats", "cam").stdout
    out = cli.ok("dataset", "render", "cam", 1, "--output", tmp_path / "ep1.gif").stdout
    assert "(5 frames)" in out and (tmp_path / "ep1.gif").read_bytes()[:3] == b"GIF"
    assert "Nothing is due" in cli.ok("dataset", "compact", "--all-due", "--min-fraction", 0.9).stdout
    [due] = cli.json("dataset", "compact", "--all-due", "--min-fraction", 0.5)
    assert (due["episodes_before"], due["episodes_after"], due["frames_after"]) == (3, 2, 15)
    assert "2 -> 2 episodes" in cli.ok("dataset", "compact", "cam").stdout
    assert "give a DATASET or --all-due" in cli.fails("dataset", "compact").stderr
    assert "OK: 2 episode(s) read in full" in cli.ok("dataset", "verify", "cam").stdout
    root = Path(cli.json("dataset", "show", "cam")["root_path"])
    next((root / "data").rglob("episode_000001.parquet")).write_bytes(b"junk")
    damaged = cli("dataset", "verify", "cam")
    assert damaged.exit_code == 1 and "DAMAGED: episode(s) 1 of 2." in damaged.stdout
    assert "Deleted cam" in cli.ok("dataset", "delete", "cam", "--yes").stdout
    assert not root.exists()
    assert "dataset cam not found" in cli.fails("dataset", "show", "cam").stderr


def test_other_users_datasets_are_not_found(cli: Cli, api_key: str, session: Session,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    record(cli, "arm", episodes=1)
    _, key = create_user(session, UserCreate(name="grace"))
    session.commit()
    with monkeypatch.context() as env:
        env.setenv("FLYWHEEL_API_KEY", key)
        for args in (("show", "arm"), ("query", "arm"), ("trim", "arm", 0, "--start", 0, "--end", 1),
                     ("delete-episodes", "arm", 0), ("compact", "arm"), ("verify", "arm"), ("stats", "arm"),
                     ("export", "arm", "--format", "lerobot"), ("render", "arm", 0, "-o", "x.gif"),
                     ("append", "arm", "."), ("delete", "arm", "--yes")):
            assert "dataset arm not found" in cli.fails("dataset", *args).stderr
        assert cli.json("dataset", "list") == []
    assert cli.json("dataset", "show", "arm")["episodes"] == 1


def test_demo_dataset_steps_record_append_trim_delete_compact_export(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from flywheel.datasets.demo_steps import DATASET_STEPS
    from flywheel.demo import create_demo_user, run_demo, start_fresh

    monkeypatch.chdir(tmp_path)
    buffer = io.StringIO()
    demo = run_demo(tmp_path / "demo", out=Console(file=buffer, width=200),
                    steps=[start_fresh, create_demo_user, *DATASET_STEPS])
    out = buffer.getvalue()
    assert "4 episodes x 50 frames at 50 Hz, chunk 0" in out
    assert "chunk 1: +2 episodes; now 6 episodes, 300 frames" in out
    assert "query (deleted hidden): [0, 1, 3, 4, 5]" in out
    assert "6 -> 5 episodes, 300 -> 230 frames; old -> new index {0: 0, 1: 1, 3: 2, 4: 3, 5: 4}" in out
    assert "lerobot: 5 episodes, 230 frames" in out and "rlds-jsonl: 5 episodes, 230 frames" in out
    assert (demo.home / "exports" / "arm-demos-lerobot" / "meta" / "info.json").is_file()
    assert (demo.home / "exports" / "arm-demos.rlds.jsonl.manifest.json").is_file()
