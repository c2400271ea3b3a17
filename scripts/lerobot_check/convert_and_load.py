"""Run inside ``.venv-lerobot``: LeRobot's own v2.1 → v3.0 converter on a local folder, then LeRobotDataset.

Usage: ``convert_and_load.py ROOT REPO_ID OUT.json``. The folder ``ROOT/REPO_ID`` (a LeRobot v2.1 export)
is converted in place by ``lerobot.datasets.v30.convert_dataset_v21_to_v30.convert_dataset`` (offline, no
push), then opened with ``LeRobotDataset`` (or only its metadata when the dataset has video features: the
check venv has no video decoder). ``OUT.json`` gets what LeRobot read: totals, features, per-episode
metadata and, without video, every frame's values.
"""

import json
import sys
from pathlib import Path
from typing import Any

from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.datasets.v30.convert_dataset_v21_to_v30 import convert_dataset


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def main(root: Path, repo_id: str, out: Path) -> None:
    convert_dataset(repo_id, root=root, push_to_hub=False, force_conversion=True)
    meta = LeRobotDatasetMetadata(repo_id, root=root / repo_id)
    report: dict[str, Any] = {
        "codebase_version": meta.info["codebase_version"],
        "total_episodes": meta.total_episodes,
        "total_frames": meta.total_frames,
        "fps": meta.fps,
        "features": meta.features,
        "video_keys": meta.video_keys,
        "tasks": meta.tasks.index.tolist(),
        "episodes": [{k: _plain(v) for k, v in meta.episodes[i].items() if not k.startswith("stats/")}
                     for i in range(meta.total_episodes)],
    }
    if not meta.video_keys:
        dataset = LeRobotDataset(repo_id, root=root / repo_id)
        report["frames"] = [{k: _plain(v) for k, v in dataset[i].items()} for i in range(len(dataset))]
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
