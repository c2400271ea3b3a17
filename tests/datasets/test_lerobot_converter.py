"""A Flywheel export goes through LeRobot's own v2.1 → v3.0 converter and opens in ``LeRobotDataset``.

LeRobot runs for real, in its own venv (``.venv-lerobot``, built by ``scripts/lerobot-venv.sh`` from
``make test``; see that script for why it is separate). ``scripts/lerobot_check/convert_and_load.py``
converts the exported folder in place, opens it and reports what LeRobot read; the test compares that with
what Flywheel's reader gives for the same dataset (trims and soft deletes applied).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.lerobot_io import export_lerobot
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.records import append_events, now
from flywheel.datasets.video import LOSSLESS_TOLERANCE, decode_video
from flywheel.datasets.writer import create_dataset

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "scripts" / "lerobot_check"
FPS = 10
H, W = 12, 16
STATE_FEATURES: dict[str, dict[str, Any]] = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
    "action": {"dtype": "float32", "shape": [2], "names": None},
}
VIDEO_FEATURES: dict[str, dict[str, Any]] = {
    **STATE_FEATURES,
    "observation.images.front": {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"]},
}
EPISODES = [(6, "pick"), (8, "place"), (5, "pick"), (7, "wave")]  # (frames, task)


@pytest.fixture(scope="module")
def lerobot_python() -> Path:
    """The check venv's python; skipped outside CI when it was not built, a failure under ``CI=true``."""
    python = Path(os.environ.get("FLYWHEEL_LEROBOT_PYTHON", REPO / ".venv-lerobot" / "bin" / "python"))
    if not python.is_file():
        message = f"{python} is missing: run `bash scripts/lerobot-venv.sh` (make test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


def _dataset(root: Path, features: dict[str, dict[str, Any]]) -> Path:
    """Four episodes; episode 1 trimmed to frames 2..6, episode 2 soft-deleted."""
    rng = np.random.default_rng(7)
    with create_dataset(root, features=features, fps=FPS, robot_type="so100") as writer:
        for i, (t, task) in enumerate(EPISODES):
            cols = {"observation.state": rng.standard_normal((t, 3)).astype(np.float32),
                    "action": rng.standard_normal((t, 2)).astype(np.float32)}
            if "observation.images.front" in features:
                cols["observation.images.front"] = rng.integers(0, 256, (t, H, W, 3), dtype=np.uint8)
            writer.append_episode(EpisodeArrays(cols, task=task, success=i % 2 == 0))
    append_events(root, [
        {"op": "trim", "episode_index": 1, "start_frame": 2, "end_frame": 6, "at": now().isoformat()},
        {"op": "delete", "episode_index": 2, "at": now().isoformat()},
    ])  # fmt: skip
    return root


def _convert_and_load(python: Path, tmp_path: Path, source: Path) -> tuple[Path, dict[str, Any]]:
    """Export ``source`` as ``<tmp>/lerobot/local/ds``, run LeRobot on it, return the folder and its report."""
    root = tmp_path / "lerobot"
    export_lerobot(source, root / "local" / "ds")
    out = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(CHECK), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([str(python), str(CHECK / "convert_and_load.py"), str(root), "local/ds", str(out)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "local" / "ds", json.loads(out.read_text())


def _kept(source: Path) -> list[tuple[dict[str, np.ndarray], str]]:
    """What Flywheel's reader gives for the kept episodes, in export order (columns, task)."""
    reader = DatasetReader(source)
    kept = []
    for rec in reader.records:
        if not rec.soft_deleted:
            ep = reader.read_episode(rec.episode_index, apply_trim=True)
            kept.append((ep.columns, ep.task))
    return kept


def test_lerobot_converter_accepts_export_and_lerobotdataset_reads_every_frame(
        tmp_path: Path, lerobot_python: Path) -> None:
    source = _dataset(tmp_path / "fw", STATE_FEATURES)
    _, report = _convert_and_load(lerobot_python, tmp_path, source)
    kept = _kept(source)
    assert report["codebase_version"] == "v3.0"
    assert (report["total_episodes"], report["total_frames"], report["fps"]) == (3, 6 + 4 + 7, FPS)
    assert [e["length"] for e in report["episodes"]] == [6, 4, 7]
    assert [e["tasks"] for e in report["episodes"]] == [["pick"], ["place"], ["wave"]]
    for key, spec in STATE_FEATURES.items():
        assert report["features"][key]["dtype"] == spec["dtype"] and report["features"][key]["shape"] == spec["shape"]
    frames = report["frames"]
    assert len(frames) == 17
    index = 0
    for episode, (columns, task) in enumerate(kept):
        for k in range(len(columns["action"])):
            frame = frames[index]
            assert (frame["episode_index"], frame["frame_index"], frame["index"]) == (episode, k, index)
            assert frame["task"] == task
            assert frame["timestamp"] == pytest.approx(k / FPS, abs=1e-6)
            for key in STATE_FEATURES:
                np.testing.assert_array_equal(np.asarray(frame[key], dtype=np.float32), columns[key][k])
            index += 1


def test_lerobot_converter_concatenates_exported_videos_frame_exact(tmp_path: Path, lerobot_python: Path) -> None:
    source = _dataset(tmp_path / "fw", VIDEO_FEATURES)
    converted, report = _convert_and_load(lerobot_python, tmp_path, source)
    key = "observation.images.front"
    assert report["video_keys"] == [key] and report["total_episodes"] == 3
    videos: dict[tuple[int, int], np.ndarray] = {}
    for (columns, _), episode in zip(_kept(source), report["episodes"], strict=True):
        chunk, file = episode[f"videos/{key}/chunk_index"], episode[f"videos/{key}/file_index"]
        if (chunk, file) not in videos:
            videos[chunk, file] = decode_video(converted / f"videos/{key}/chunk-{chunk:03d}/file-{file:03d}.mp4")
        start = round(episode[f"videos/{key}/from_timestamp"] * FPS)
        stop = round(episode[f"videos/{key}/to_timestamp"] * FPS)
        assert stop - start == episode["length"]
        got = videos[chunk, file][start:stop].astype(int)
        assert np.abs(got - columns[key].astype(int)).max() <= 2 * LOSSLESS_TOLERANCE
