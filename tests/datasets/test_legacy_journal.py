"""Earlier pending journal: episodes an older writer saved before a kill are committed at the next open.

The leftovers are written byte for byte as the older writer wrote them (``flywheel_pending.jsonl`` plus
``meta/pending/episode_XXXXXX.bin``, or the first version's parquet file under its final name), by the
helpers below, which copy that code (git history up to 8ed049f^) instead of importing anything from it.
The recovered dataset is compared with a twin that today's writer recorded from the same frames.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from flywheel.datasets import commit, legacy_journal
from flywheel.datasets.format import SIDECAR_PATH, data_file
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.records import load_records
from flywheel.datasets.writer import DatasetWriter, create_dataset, open_for_append

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
    "action": {"dtype": "float32", "shape": [2], "names": None},
    "gripper": {"dtype": "int64", "shape": [1], "names": None},
}
FPS = 10
JOURNAL = "meta/flywheel_pending.jsonl"
RAW_DIR = "meta/pending"

#: (frames, task, success, metadata, with next.reward) of each episode the tests record.
EPISODES: list[tuple[int, str, bool | None, dict[str, Any], bool]] = [
    (4, "reach", True, {}, False),
    (3, "wave", None, {}, False),
    (5, "reach", False, {"operator": "ana"}, False),
    (6, "lift", True, {}, True),
    (2, "wave", None, {"note": "short"}, False),
    (3, "reach", True, {}, False),
]


def frames_of(episode: int) -> list[dict[str, np.ndarray]]:
    """The recorded frames of an episode: distinct values per episode and frame."""
    n, *_, with_reward = EPISODES[episode]
    out = []
    for i in range(n):
        v = 100.0 * episode + i
        frame = {"observation.state": np.array([v, v + 0.25, -v], np.float32),
                 "action": np.array([v / 7, 1 - v], np.float32), "gripper": np.array([episode * 10 + i], np.int64)}
        if with_reward:
            frame["next.reward"] = np.array([0.5 * i], np.float32)
        out.append(frame)
    return out


def record_today(writer: DatasetWriter, episode: int) -> Any:
    """Record an episode with today's writer."""
    _, task, success, metadata, _ = EPISODES[episode]
    for frame in frames_of(episode):
        writer.add_frame(frame, task=task)
    return writer.save_episode(success=success, metadata=metadata)


# -- the earlier writer's bytes (copied from its save path, not imported) ---------------------------


def old_columns(episode: int, first_frame: int, task_index: int) -> dict[str, np.ndarray]:
    """The columns the earlier ``DatasetWriter._all_columns`` built, in its order."""
    buffered = {k: np.stack([f[k] for f in frames_of(episode)]) for k in frames_of(episode)[0]}
    n = len(next(iter(buffered.values())))
    frame = np.arange(n, dtype=np.int64).reshape(-1, 1)
    done = buffered.get("next.done")
    if done is None:
        done = np.zeros((n, 1), dtype=bool)
        done[-1] = True
    reward = buffered.get("next.reward")
    out = {k: buffered[k] for k, spec in FEATURES.items() if spec["dtype"] != "video"}
    out.update({
        "timestamp": (frame / FPS).astype(np.float32),
        "frame_index": frame,
        "episode_index": np.full((n, 1), episode, dtype=np.int64),
        "index": frame + first_frame,
        "task_index": np.full((n, 1), task_index, dtype=np.int64),
        "next.reward": np.zeros((n, 1), np.float32) if reward is None else reward.reshape(n, 1),
        "next.done": done.reshape(n, 1),
    })
    return out


def old_write_wal(path: Path, columns: dict[str, np.ndarray]) -> None:
    """The earlier ``commit.write_wal``: a JSON header line, then the arrays' bytes, in one writev."""
    arrays = [np.ascontiguousarray(v) for v in columns.values()]
    header = json.dumps({"columns": [[k, a.dtype.str, list(a.shape)] for k, a in zip(columns, arrays, strict=True)]})
    parts: list[Any] = [header.encode() + b"\n", *(memoryview(a).cast("B") for a in arrays)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert os.writev(fd, parts) == sum(len(p) for p in parts)
    finally:
        os.close(fd)


def old_add_line(episode: int, episode_id: str, chunk_id: int, created_at: datetime) -> bytes:
    """The earlier journal line of an episode: its "add" event, positional, compact JSON."""
    n, task, success, metadata, _ = EPISODES[episode]
    event = ["add", episode, episode_id, chunk_id, created_at.isoformat(), n, 0, n, task, success, False, "record",
             False, None, metadata]
    return (json.dumps(event, separators=(",", ":")) + "\n").encode()


def old_save(root: Path, episode: int, *, chunk_id: int, first_frame: int, task_index: int,
             as_parquet: bool = False, journal: bool = True) -> str:
    """What the earlier ``save_episode`` left on disk for an episode (its raw file, then its journal line).

    ``as_parquet``: the first version's form, the parquet file under its final name instead of a raw
    file. Returns the episode id.
    """
    cols = old_columns(episode, first_frame, task_index)
    data_file(root, episode).parent.mkdir(parents=True, exist_ok=True)
    if as_parquet:
        pq.write_table(commit.episode_table(cols, FEATURES), data_file(root, episode), use_dictionary=False,
                       write_statistics=False)
    else:
        (root / RAW_DIR).mkdir(parents=True, exist_ok=True)
        old_write_wal(root / RAW_DIR / f"episode_{episode:06d}.bin", cols)
    episode_id = uuid.uuid4().hex
    if journal:
        with open(root / JOURNAL, "ab") as f:
            f.write(old_add_line(episode, episode_id, chunk_id, datetime.now(UTC)))
    return episode_id


def killed_old_session(root: Path, *, as_parquet: bool = False) -> dict[int, str]:
    """A dataset with episodes 0-1 committed, then an earlier writer's session (chunk 1), killed.

    Its committer had committed episode 2 (journaled still); episodes 3 and 4 are saved (journaled);
    episode 5's raw file is written, its journal line not yet. Returns episode -> id of the saved ones.
    """
    with create_dataset(root, features=FEATURES, fps=FPS, robot_type="arm") as w:
        record_today(w, 0)
        record_today(w, 1)
    with open_for_append(root) as w:  # the old committer's work for episode 2: parquet, sidecar, meta
        committed = record_today(w, 2)
    with open(root / JOURNAL, "ab") as f:
        f.write(old_add_line(2, committed.episode_id, 1, committed.created_at))
    ids = {}
    first = sum(EPISODES[i][0] for i in range(3))
    ids[3] = old_save(root, 3, chunk_id=1, first_frame=first, task_index=2, as_parquet=as_parquet)
    ids[4] = old_save(root, 4, chunk_id=1, first_frame=first + EPISODES[3][0], task_index=1)
    old_save(root, 5, chunk_id=1, first_frame=first + EPISODES[3][0] + EPISODES[4][0], task_index=0, journal=False)
    return ids


def twin(root: Path, episodes: int, *, killed_from: int | None = None) -> Path:
    """The same episodes recorded by today's writer; from ``killed_from`` on, saved by a writer killed
    before it committed them, then recovered from its pending log by the next open (stats included)."""
    killed_from = episodes if killed_from is None else killed_from
    with create_dataset(root, features=FEATURES, fps=FPS, robot_type="arm") as w:
        for i in range(killed_from):
            record_today(w, i)
    if killed_from < episodes:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(commit.Committer, "_commit", lambda self, jobs: None)
            w = open_for_append(root)
            for i in range(killed_from, episodes):
                record_today(w, i)
            w._committer.close()  # drains its queue without committing
            w._release()  # the lock goes with the process; nothing else runs
        open_for_append(root).close()
    return root


def sidecar_adds(root: Path) -> list[int]:
    return [json.loads(line)[1] for line in (root / SIDECAR_PATH).read_text().splitlines() if line.startswith("[")]


def assert_old_files_gone(root: Path) -> None:
    assert not (root / JOURNAL).exists() and not (root / RAW_DIR).exists()


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_parquet", [False, True], ids=["raw-file", "first-version-parquet"])
def test_saved_episodes_are_committed_as_todays_writer_commits_them(tmp_path: Path, as_parquet: bool) -> None:
    root = tmp_path / "ds"
    ids = killed_old_session(root, as_parquet=as_parquet)
    with open_for_append(root) as w:
        assert w.num_episodes == 5 and w.chunk_id == 2  # 0-4: episode 5 was never journaled
        record_today(w, 5)  # indexes continue after the recovered episodes
    assert_old_files_gone(root)
    assert sidecar_adds(root) == [0, 1, 2, 3, 4, 5]  # episode 2 (committed already) only once

    reader = DatasetReader(root)
    records = reader.records
    assert [r.chunk_id for r in records] == [0, 0, 1, 1, 1, 2]
    assert {3: records[3].episode_id, 4: records[4].episode_id} == ids
    for i, r in enumerate(records):
        n, task, success, metadata, _ = EPISODES[i]
        assert (r.total_frames, r.task, r.success, r.metadata, r.source) == (n, task, success, metadata, "record")
        ep = reader.read_episode(i)
        for key in FEATURES:
            np.testing.assert_array_equal(ep.columns[key], np.stack([f[key] for f in frames_of(i)]))
    np.testing.assert_array_equal(reader.read_columns(3)["next.reward"][:, 0], 0.5 * np.arange(6, dtype=np.float32))
    assert reader.read_columns(4)["index"][:, 0].tolist() == [18, 19]

    same = twin(tmp_path / "twin", 5, killed_from=3)  # recovered from today's pending log
    with open_for_append(same) as w:
        record_today(w, 5)
    for i in range(6):  # the same parquet bytes as today's writer's
        assert data_file(root, i).read_bytes() == data_file(same, i).read_bytes(), i
    for rel in ("meta/episodes_stats.jsonl", "meta/episodes.jsonl", "meta/tasks.jsonl"):
        assert (root / rel).read_text() == (same / rel).read_text(), rel
    info, twin_info = (json.loads((r / "meta/info.json").read_text()) for r in (root, same))
    assert info == twin_info


@pytest.mark.parametrize("cut", ["line-torn", "line-garbled", "raw-file-short", "raw-file-missing"])
def test_an_entry_the_kill_cut_is_dropped_and_the_earlier_ones_survive(tmp_path: Path, cut: str) -> None:
    root = tmp_path / "ds"
    killed_old_session(root)
    raw4 = root / RAW_DIR / "episode_000004.bin"
    journal = root / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    if cut == "line-torn":  # the kill stopped the append of episode 4's line
        journal.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    elif cut == "line-garbled":  # a power loss left zeros where the line was
        journal.write_bytes(b"".join(lines[:-1]) + b"\0" * (len(lines[-1]) - 1) + b"\n")
    elif cut == "raw-file-short":  # a power loss kept the line but not all of the raw file
        raw4.write_bytes(raw4.read_bytes()[:-3])
    else:
        raw4.unlink()
    with open_for_append(root) as w:
        assert w.num_episodes == 4
        record_today(w, 4)  # index 4 is free again
    assert_old_files_gone(root)
    assert sidecar_adds(root) == [0, 1, 2, 3, 4]
    reader = DatasetReader(root)
    assert [r.chunk_id for r in reader.records] == [0, 0, 1, 1, 2]
    assert reader.read_columns(4)["index"][:, 0].tolist() == [18, 19]
    np.testing.assert_array_equal(reader.read_columns(3)["observation.state"][:, 0],
                                  np.arange(300, 306, dtype=np.float32))


@pytest.mark.parametrize("where", ["before-the-commit-point", "after-the-commit-point"])
def test_a_recovery_cut_short_runs_again_without_duplicates(tmp_path: Path, monkeypatch, where: str) -> None:
    root = tmp_path / "ds"
    killed_old_session(root)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("killed")

    if where == "before-the-commit-point":  # parquet files written durably, sidecar not appended
        monkeypatch.setattr(commit, "append_bytes", crash)
    else:  # committed, the old files not removed yet
        monkeypatch.setattr(legacy_journal, "clear_legacy", crash)
    with pytest.raises(OSError, match="killed"):
        open_for_append(root)
    assert (root / JOURNAL).is_file()
    assert data_file(root, 3).is_file() and data_file(root, 4).is_file()
    assert sidecar_adds(root) == ([0, 1, 2] if where == "before-the-commit-point" else [0, 1, 2, 3, 4])
    monkeypatch.undo()

    with open_for_append(root) as w:
        assert w.num_episodes == 5
    assert_old_files_gone(root)
    assert sidecar_adds(root) == [0, 1, 2, 3, 4]
    same = twin(tmp_path / "twin", 5, killed_from=3)
    assert (root / "meta/episodes_stats.jsonl").read_text() == (same / "meta/episodes_stats.jsonl").read_text()
    assert data_file(root, 4).read_bytes() == data_file(same, 4).read_bytes()


def test_a_journal_a_writer_closed_cleanly_is_removed(tmp_path: Path) -> None:
    root = twin(tmp_path / "ds", 2)
    (root / JOURNAL).write_bytes(b"")  # the earlier close emptied it
    (root / RAW_DIR).mkdir()
    with open_for_append(root) as w:
        assert w.num_episodes == 2
    assert_old_files_gone(root)


def test_leftovers_an_unaware_open_overtook_are_left_alone(tmp_path: Path, monkeypatch) -> None:
    root = twin(tmp_path / "ds", 2)
    old_save(root, 2, chunk_id=1, first_frame=7, task_index=0)
    monkeypatch.setattr(legacy_journal, "recover_legacy", lambda root, records, keys: records)
    with open_for_append(root) as w:  # a build that knew only the pending log: index 2 is taken now
        record_today(w, 3)
    monkeypatch.undo()
    journal = (root / JOURNAL).read_bytes()
    with open_for_append(root) as w:
        assert w.num_episodes == 3
    assert (root / JOURNAL).read_bytes() == journal and (root / RAW_DIR / "episode_000002.bin").is_file()
    assert load_records(root)[2].task == EPISODES[3][1]
