"""LeRobot's ``meta/`` files, kept in step with the committed episodes.

The sidecar log is the source of truth (its first line holds the schema); ``info.json``,
``episodes.jsonl``, ``tasks.jsonl`` and ``episodes_stats.jsonl`` are derived from it. They are updated
right after each commit (jsonl lines appended, so the cost per episode does not grow with the dataset;
the totals in ``info.json`` are replaced at most once a second while recording and when the writer
closes; none of these updates is fsynced, being derived) and rebuilt by ``sync_meta`` when a crash left
them behind the sidecar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from flywheel.datasets.format import (
    EPISODES_PATH,
    EPISODES_STATS_PATH,
    INFO_PATH,
    TASKS_PATH,
    make_info,
    user_features,
)
from flywheel.datasets.records import EpisodeRecord
from flywheel.datasets.stats import load_episode_stats
from flywheel.durable import append_bytes, replace_unsynced, write_atomic

#: While recording, info.json totals are rewritten at most this often (and when the writer closes).
INFO_INTERVAL_S = 1.0


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def episode_line(episode_index: int, task: str, length: int) -> bytes:
    """The ``episodes.jsonl`` line of an episode."""
    return _line({"episode_index": episode_index, "tasks": [task], "length": length})


def task_line(task_index: int, task: str) -> bytes:
    """The ``tasks.jsonl`` line of a task."""
    return _line({"task_index": task_index, "task": task})


def stats_line(episode_index: int, stats: dict[str, Any]) -> bytes:
    """The ``episodes_stats.jsonl`` line of an episode (compact JSON, as ``json.loads`` reads it back).

    Encoded with orjson: an episode's stats are hundreds of floats, and ``json.dumps`` took a fifth of
    the committer's time on them (orjson is ~20x faster; both write the shortest repr of each float).

    Example:
        >>> stats_line(3, {"a": {"min": [0.5], "count": [2]}})
        b'{"episode_index":3,"stats":{"a":{"min":[0.5],"count":[2]}}}\\n'
    """
    return orjson.dumps({"episode_index": episode_index, "stats": stats},
                        option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)


def tasks_of(records: list[EpisodeRecord]) -> dict[str, int]:
    """Task -> task_index, numbered in order of first appearance."""
    tasks: dict[str, int] = {}
    for r in records:
        tasks.setdefault(r.task, len(tasks))
    return tasks


class MetaFiles:
    """Appends committed episodes to LeRobot's meta files.

    Example:
        >>> meta = MetaFiles(Path("ds"), info=load_info(Path("ds")), records=[])  # doctest: +SKIP
    """

    def __init__(self, root: Path, *, info: dict[str, Any], records: list[EpisodeRecord]) -> None:
        self.root = root
        self.features = user_features(info["features"])
        self.fps = int(info["fps"])
        self.robot_type = info["robot_type"]
        self.tasks = tasks_of(records)
        self.total_episodes = len(records)
        self.total_frames = sum(r.total_frames for r in records)
        self._features_json: str | None = None
        self._info_written = -INFO_INTERVAL_S

    def _info_json(self) -> bytes:
        """``info.json`` bytes as ``json.dumps(info, indent=4)``; the features are serialised once."""
        info = self.info()
        features = info.pop("features")
        if self._features_json is None:
            self._features_json = json.dumps(features, indent=4).replace("\n", "\n    ")
        head = json.dumps(info, indent=4)
        return f'{head[:-2]},\n    "features": {self._features_json}\n}}'.encode()

    def info(self) -> dict[str, Any]:
        """The current ``info.json`` dict."""
        return make_info(features=self.features, fps=self.fps, robot_type=self.robot_type,
                         total_episodes=self.total_episodes, total_frames=self.total_frames,
                         total_tasks=len(self.tasks))

    def add_episodes(self, committed: list[tuple[EpisodeRecord, bytes]]) -> None:
        """Record committed episodes in every meta file, one append per file (``bytes``: each one's ``stats_line``)."""
        tasks, episodes = [], []
        for record, _ in committed:
            if record.task not in self.tasks:
                self.tasks[record.task] = len(self.tasks)
                tasks.append(task_line(self.tasks[record.task], record.task))
            episodes.append(episode_line(record.episode_index, record.task, record.total_frames))
            self.total_episodes += 1
            self.total_frames += record.total_frames
        if tasks:
            append_bytes(self.root / TASKS_PATH, b"".join(tasks), sync=False)
        append_bytes(self.root / EPISODES_PATH, b"".join(episodes), sync=False)
        append_bytes(self.root / EPISODES_STATS_PATH, b"".join(stats for _, stats in committed), sync=False)
        if time.monotonic() - self._info_written >= INFO_INTERVAL_S:
            self.write_info()

    def write_info(self) -> None:
        """Replace ``info.json`` with the current totals."""
        replace_unsynced(self.root / INFO_PATH, self._info_json())
        self._info_written = time.monotonic()


def write_all(root: Path, info: dict[str, Any], records: list[EpisodeRecord],
              stats: dict[int, dict[str, Any]]) -> None:
    """Write every meta file from scratch (atomic replace each)."""
    tasks = tasks_of(records)
    write_atomic(root / TASKS_PATH, b"".join(task_line(i, t) for t, i in tasks.items()))
    write_atomic(root / EPISODES_PATH,
                 b"".join(episode_line(r.episode_index, r.task, r.total_frames) for r in records))
    write_atomic(root / EPISODES_STATS_PATH, b"".join(stats_line(r.episode_index, stats[r.episode_index])
                                                      for r in records))
    write_atomic(root / INFO_PATH, json.dumps(info, indent=4).encode())


def _read_lines(path: Path) -> list[bytes]:
    try:
        return [line + b"\n" for line in path.read_bytes().split(b"\n")[:-1]]
    except FileNotFoundError:
        return []


def _stats_lines_match(lines: list[bytes], records: list[EpisodeRecord]) -> bool:
    """Whether there is one whole ``stats_line`` per record, in order (checked without parsing the stats)."""
    return len(lines) == len(records) and all(
        line.startswith(b'{"episode_index":%d,"stats":{' % r.episode_index) and line.endswith(b"}}\n")
        for line, r in zip(lines, records, strict=True))


def sync_meta(root: Path, info: dict[str, Any], records: list[EpisodeRecord],
              episode_stats: Callable[[int], dict[str, Any]]) -> bool:
    """Rebuild whatever meta file disagrees with the committed records (after a crash).

    Args:
        root: the dataset folder.
        info: its current info.json dict (features, fps, robot_type are kept).
        records: the committed episode records.
        episode_stats: computes the stats of an episode whose stats line is missing.

    Returns:
        True if a file was rewritten.
    """
    meta = MetaFiles(root, info=info, records=records)
    changed = False
    expected_tasks = [task_line(i, t) for t, i in meta.tasks.items()]
    if _read_lines(root / TASKS_PATH) != expected_tasks:
        write_atomic(root / TASKS_PATH, b"".join(expected_tasks))
        changed = True
    expected_eps = [episode_line(r.episode_index, r.task, r.total_frames) for r in records]
    if _read_lines(root / EPISODES_PATH) != expected_eps:
        write_atomic(root / EPISODES_PATH, b"".join(expected_eps))
        changed = True
    if not _stats_lines_match(_read_lines(root / EPISODES_STATS_PATH), records):
        stored = load_episode_stats(root, skip_damaged=True)
        out = [stats_line(r.episode_index, stored.get(r.episode_index) or episode_stats(r.episode_index))
               for r in records]
        write_atomic(root / EPISODES_STATS_PATH, b"".join(out))
        changed = True
    new_info = meta.info()
    if new_info != info:
        write_atomic(root / INFO_PATH, json.dumps(new_info, indent=4).encode())
        changed = True
    return changed
