"""Writer: creating, recording, bulk appends, validation, append sessions, resume and meta files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.format import CODEBASE_VERSION, data_file
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.writer import create_dataset, open_for_append
from flywheel.errors import Conflict, InvalidInput

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
    "action": {"dtype": "float32", "shape": [2], "names": None},
}


def frame(i: float) -> dict[str, np.ndarray]:
    return {"observation.state": np.full(3, i, np.float32), "action": np.array([i, -i], np.float32)}


def record(writer, n: int, task: str = "reach", start: float = 0.0, **kw):
    for i in range(n):
        writer.add_frame(frame(start + i), task=task)
    return writer.save_episode(**kw)


def test_recorded_episode_reads_back_with_lerobot_columns(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        rec0 = record(w, 4, success=True)
        rec1 = record(w, 3, task="wave", start=100)
    assert (rec0.episode_index, rec1.episode_index) == (0, 1)
    table = pq.read_table(data_file(root, 1)).to_pydict()
    assert table["index"] == [4, 5, 6] and table["frame_index"] == [0, 1, 2]
    assert table["episode_index"] == [1, 1, 1] and table["task_index"] == [1, 1, 1]
    assert table["timestamp"] == pytest.approx([0.0, 0.1, 0.2])
    assert table["next.done"] == [False, False, True] and table["next.reward"] == [0.0, 0.0, 0.0]
    assert table["observation.state"][2] == [102.0, 102.0, 102.0]
    ep = DatasetReader(root).read_episode(0)
    np.testing.assert_array_equal(ep.columns["action"][:, 1], -np.arange(4, dtype=np.float32))
    assert ep.task == "reach" and ep.success is True


def test_meta_files_follow_lerobot_v21(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=30, robot_type="so100") as w:
        record(w, 5)
        record(w, 2, task="wave")
        record(w, 3)
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == CODEBASE_VERSION == "v2.1"
    assert (info["robot_type"], info["fps"], info["chunks_size"]) == ("so100", 30, 1000)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 10, 2)
    assert (info["total_chunks"], info["total_videos"], info["splits"]) == (1, 0, {"train": "0:3"})
    assert info["data_path"] == "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    assert info["video_path"] == "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    assert info["features"]["observation.state"] == FEATURES["observation.state"]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index", "next.reward", "next.done"):
        assert key in info["features"]
    lines = [json.loads(x) for x in (root / "meta/episodes.jsonl").read_text().splitlines()]
    assert lines[1] == {"episode_index": 1, "tasks": ["wave"], "length": 2}
    tasks = [json.loads(x) for x in (root / "meta/tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": "reach"}, {"task_index": 1, "task": "wave"}]
    stats = [json.loads(x) for x in (root / "meta/episodes_stats.jsonl").read_text().splitlines()]
    s = stats[0]["stats"]["observation.state"]
    assert s["min"] == [0.0] * 3 and s["max"] == [4.0] * 3 and s["mean"] == [2.0] * 3 and s["count"] == [5]
    assert s["std"] == pytest.approx([np.std(np.arange(5))] * 3)


def test_append_episode_bulk_and_metadata(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    cols = {"observation.state": np.ones((6, 3)), "action": np.zeros((6, 2), np.float32),
            "next.reward": np.linspace(0, 1, 6)}
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        rec = w.append_episode(EpisodeArrays(cols, task="t", success=False,
                                             metadata={"operator": "a1", "episode_index": 99}))
    assert rec.source == "import" and rec.metadata == {"operator": "a1"} and rec.success is False
    ep = DatasetReader(root).read_episode(0)
    assert ep.columns["observation.state"].dtype == np.float32
    np.testing.assert_allclose(ep.columns["next.reward"][:, 0], np.linspace(0, 1, 6), rtol=1e-6)
    assert ep.metadata["operator"] == "a1" and ep.metadata["episode_index"] == 0


@pytest.mark.parametrize(("bad", "field"), [
    ({"observation.state": np.zeros(3, np.float32)}, "action"),
    ({**frame(0), "gripper": np.zeros(1)}, "gripper"),
    ({**frame(0), "action": np.zeros(3, np.float32)}, "action"),
    ({**frame(0), "action": np.array([1.0, np.nan], np.float32)}, "action"),
    ({**frame(0), "observation.state": np.array([1.0, np.inf, 0.0])}, "observation.state"),
    ({**frame(0), "action": np.array(["a", "b"])}, "action"),
])
def test_bad_frames_are_refused_naming_the_feature(tmp_path: Path, bad: dict, field: str) -> None:
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=10, robot_type="arm") as w:
        w.add_frame(frame(0), task="t")
        with pytest.raises(InvalidInput) as err:
            w.add_frame(bad, task="t")
        assert err.value.field == field and field in str(err.value)
        assert w.buffered_frames == 1
        w.save_episode()
    assert DatasetReader(tmp_path / "ds").records[0].total_frames == 1


def test_int_feature_refuses_floats_and_task_must_not_change(tmp_path: Path) -> None:
    feats = {"gear": {"dtype": "int64", "shape": [1], "names": None}}
    with create_dataset(tmp_path / "ds", features=feats, fps=10, robot_type="arm") as w:
        w.add_frame({"gear": 3}, task="t")
        with pytest.raises(InvalidInput, match="gear"):
            w.add_frame({"gear": 2.5}, task="t")
        with pytest.raises(InvalidInput) as err:
            w.add_frame({"gear": 1}, task="other")
        assert err.value.field == "task"


def test_schema_mismatch_in_bulk_append_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        record(w, 2)
        bad = [
            ({"observation.state": np.zeros((4, 3))}, "action"),
            ({"observation.state": np.zeros((4, 3)), "action": np.zeros((4, 5))}, "action"),
            ({"observation.state": np.zeros((4, 3)), "action": np.zeros((3, 2))}, "action"),
            ({"observation.state": np.zeros((4, 3)), "action": np.zeros((4, 2)), "wrist": np.zeros((4, 1))}, "wrist"),
        ]
        for cols, field in bad:
            with pytest.raises(InvalidInput) as err:
                w.append_episode(EpisodeArrays(cols, task="t"))
            assert err.value.field == field
    files = sorted(p.name for p in (root / "data/chunk-000").iterdir())
    assert files == ["episode_000000.parquet"]
    assert len(DatasetReader(root).records) == 1


@pytest.mark.parametrize(("features", "field"), [
    ({}, "features"),
    ({"a": {"dtype": "float16", "shape": [1]}}, "features.a.dtype"),
    ({"a": {"dtype": "float32", "shape": [0]}}, "features.a.shape"),
    ({"a": {"dtype": "float32", "shape": [2, 2]}}, "features.a.shape"),
    ({"cam": {"dtype": "video", "shape": [4, 4]}}, "features.cam.shape"),
    ({"index": {"dtype": "float32", "shape": [3]}}, "features.index"),
])
def test_bad_feature_declarations_are_refused(tmp_path: Path, features: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        create_dataset(tmp_path / "ds", features=features, fps=10, robot_type="arm")
    assert err.value.field == field
    assert not (tmp_path / "ds" / "meta" / "info.json").exists()


def test_append_sessions_get_new_chunk_ids_and_never_rewrite_files(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        record(w, 3)
        record(w, 3)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (root / "data").rglob("*.parquet")}
    with open_for_append(root) as w:
        assert w.chunk_id == 1
        record(w, 2, task="second batch")
    with open_for_append(root) as w:
        assert w.chunk_id == 2
    recs = DatasetReader(root).records
    assert [r.chunk_id for r in recs] == [0, 0, 1]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before
    assert pq.read_table(data_file(root, 2)).column("index").to_pylist() == [6, 7]
    info = json.loads((root / "meta/info.json").read_text())
    assert info["total_episodes"] == 3 and info["total_frames"] == 8


def test_one_writer_at_a_time_and_create_refuses_existing(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    w = create_dataset(root, features=FEATURES, fps=10, robot_type="arm")
    with pytest.raises(Conflict):
        open_for_append(root)
    with pytest.raises(Conflict):
        create_dataset(root, features=FEATURES, fps=10, robot_type="arm")
    w.close()
    with pytest.raises(Conflict):
        w.add_frame(frame(0), task="t")
    open_for_append(root).close()


def test_resume_removes_leftovers_and_rebuilds_meta(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        record(w, 3)
        record(w, 3)
    # What a crash can leave: an uncommitted episode file, a temp file, a torn sidecar line, stale meta.
    (root / "data/chunk-000/episode_000002.parquet").write_bytes(b"partial")
    (root / "data/chunk-000/.episode_000002.parquet.tmp-123").write_bytes(b"partial")
    with open(root / "meta/flywheel_episodes.jsonl", "ab") as f:
        f.write(b'{"op":"add","episode_in')
    lines = (root / "meta/episodes.jsonl").read_text().splitlines()
    (root / "meta/episodes.jsonl").write_text(lines[0] + "\n")
    (root / "meta/episodes_stats.jsonl").write_text("")
    assert len(DatasetReader(root).records) == 2  # the torn line is invisible to readers too
    with open_for_append(root) as w:
        rec = record(w, 4, start=50)
    assert rec.episode_index == 2
    assert not (root / "data/chunk-000/.episode_000002.parquet.tmp-123").exists()
    reader = DatasetReader(root)
    assert [r.total_frames for r in reader.records] == [3, 3, 4]
    assert reader.read_episode(2).columns["action"][0, 0] == 50
    assert len((root / "meta/episodes.jsonl").read_text().splitlines()) == 3
    stats = [json.loads(x) for x in (root / "meta/episodes_stats.jsonl").read_text().splitlines()]
    assert [s["episode_index"] for s in stats] == [0, 1, 2]
    assert stats[1]["stats"]["action"]["max"] == [2.0, 0.0]


def test_damaged_info_json_is_rebuilt_from_the_sidecar(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        record(w, 3)
    (root / "meta/info.json").write_text("")
    with open_for_append(root) as w:
        record(w, 2)
    info = json.loads((root / "meta/info.json").read_text())
    assert info["total_episodes"] == 2 and info["features"]["action"]["shape"] == [2]


def test_frames_are_copied_so_reused_buffers_do_not_alias(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    buf = frame(0)
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for i in range(3):
            buf["action"][:] = [i, i]
            w.add_frame(buf, task="t")
        w.save_episode()
    np.testing.assert_array_equal(DatasetReader(root).read_episode(0).columns["action"][:, 0], [0, 1, 2])


def test_long_episodes_keep_every_frame_whatever_form_it_came_in(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    n = 600  # more than the buffer's first allocation: it grows
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for i in range(n):
            if i % 7 == 0:  # lists and float64 arrays take the checked path
                w.add_frame({"observation.state": [i, i, i], "action": np.array([i, -i], np.float64),
                             "next.reward": float(i)}, task="t")
            else:
                w.add_frame({**frame(i), "next.reward": np.array([i], np.float32)}, task="t")
        assert w.buffered_frames == n
        w.save_episode()
    cols = DatasetReader(root).read_episode(0).columns
    np.testing.assert_array_equal(cols["observation.state"][:, 2], np.arange(n, dtype=np.float32))
    np.testing.assert_array_equal(cols["action"][:, 1], -np.arange(n, dtype=np.float32))
    np.testing.assert_array_equal(cols["next.reward"][:, 0], np.arange(n, dtype=np.float32))


def test_a_bad_frame_late_in_a_long_episode_keeps_the_good_ones(tmp_path: Path) -> None:
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=10, robot_type="arm") as w:
        for i in range(300):
            w.add_frame(frame(i), task="t")
        with pytest.raises(InvalidInput) as err:
            w.add_frame({**frame(0), "observation.state": np.array([0.0, np.nan, 0.0], np.float32)}, task="t")
        assert err.value.field == "observation.state"
        w.add_frame(frame(300), task="t")
        w.save_episode()
    got = DatasetReader(tmp_path / "ds").read_episode(0).columns["observation.state"][:, 0]
    np.testing.assert_array_equal(got, np.arange(301, dtype=np.float32))


def test_stats_lines_a_crash_damaged_are_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for _ in range(3):
            record(w, 3)
    path = root / "meta/episodes_stats.jsonl"
    good = path.read_bytes()
    lines = good.splitlines(keepends=True)
    garbled = lines[1][:1] + b"#" + lines[1][2:]  # not JSON any more
    # torn, out of order, short, a garbled line in the middle
    for damaged in (good[:-30], lines[0] + lines[2] + lines[1], lines[0] + lines[1], lines[0] + garbled + lines[2]):
        path.write_bytes(damaged)
        open_for_append(root).close()
        rebuilt = [json.loads(line) for line in path.read_bytes().splitlines()]
        assert [s["episode_index"] for s in rebuilt] == [0, 1, 2]
        assert [s["stats"]["action"] for s in rebuilt] == [json.loads(x)["stats"]["action"] for x in lines]


def test_save_without_frames_is_refused(tmp_path: Path) -> None:
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=10, robot_type="arm") as w, \
            pytest.raises(InvalidInput):
        w.save_episode()


def test_video_feature_roundtrip(tmp_path: Path) -> None:
    pytest.importorskip("flywheel.datasets.video")
    from flywheel.datasets.video import LOSSLESS_TOLERANCE

    root = tmp_path / "ds"
    feats = {**FEATURES, "observation.images.top": {"dtype": "video", "shape": [12, 16, 3], "names": None}}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(5, 12, 16, 3), dtype=np.uint8)
    with create_dataset(root, features=feats, fps=10, robot_type="arm") as w:
        for i in range(5):
            w.add_frame({**frame(i), "observation.images.top": images[i]}, task="look")
        w.save_episode()
    assert (root / "videos/chunk-000/observation.images.top/episode_000000.mp4").is_file()
    info = json.loads((root / "meta/info.json").read_text())
    assert info["total_videos"] == 1 and info["features"]["observation.images.top"]["info"]["video.fps"] == 10
    got = DatasetReader(root).read_episode(0).columns["observation.images.top"]
    assert got.shape == images.shape
    assert np.abs(got.astype(int) - images).max() <= LOSSLESS_TOLERANCE
    assert "observation.images.top" not in pq.read_table(data_file(root, 0)).column_names


def test_saved_episodes_survive_a_writer_that_died_before_committing(tmp_path: Path, monkeypatch) -> None:
    from flywheel.datasets.commit import Committer
    from flywheel.datasets.edits import trim_episode

    root = tmp_path / "ds"
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        record(w, 3)
    monkeypatch.setattr(Committer, "_commit", lambda self, jobs: None)  # the process "dies" before committing
    w = open_for_append(root)
    record(w, 4, start=10)
    record(w, 5, start=20)
    w._committer.close()  # drains its queue without committing
    w._release()  # the lock goes with the process; nothing else runs
    monkeypatch.undo()
    committed = (root / "meta/flywheel_episodes.jsonl").read_text().count("\n")
    assert committed == 2  # schema line + episode 0
    reader = DatasetReader(root)  # readers see saved episodes whose files are complete
    assert [r.total_frames for r in reader.records] == [3, 4, 5]
    assert reader.read_episode(2).columns["action"][0, 0] == 20
    trim_episode(root, 2, start_frame=1, end_frame=3)  # an edit commits them (the writer is gone)
    assert (root / "meta/flywheel_episodes.jsonl").read_text().count("\n") == 5
    with open_for_append(root) as w:
        assert w.num_episodes == 3 and w.chunk_id == 2
    assert DatasetReader(root).records[2].length == 2


def test_pending_episode_with_incomplete_file_stays_invisible(tmp_path: Path, monkeypatch) -> None:
    from flywheel.datasets.commit import Committer

    root = tmp_path / "ds"
    monkeypatch.setattr(Committer, "_commit", lambda self, jobs: None)
    w = create_dataset(root, features=FEATURES, fps=10, robot_type="arm")
    record(w, 3)
    record(w, 3)
    w._committer.close()
    w._release()
    monkeypatch.undo()
    assert not data_file(root, 0).exists()  # saved episodes live in the pending log until committed
    log = root / "meta/flywheel_pending.log"
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2 - 20])  # power loss: the first episode's bytes never got there whole
    assert DatasetReader(root).records == []
    with open_for_append(root) as w:
        assert w.num_episodes == 0
        record(w, 2)
    assert [r.total_frames for r in DatasetReader(root).records] == [2]


def _saved_not_committed(root: Path, monkeypatch, lengths: list[int]) -> Path:
    """Episodes of ``lengths`` frames saved to the pending log by a writer that died before committing."""
    from flywheel.datasets.commit import Committer

    monkeypatch.setattr(Committer, "_commit", lambda self, jobs: None)
    w = create_dataset(root, features=FEATURES, fps=10, robot_type="arm")
    for i, n in enumerate(lengths):
        record(w, n, start=10 * i)
    w._committer.close()
    w._release()
    monkeypatch.undo()
    return root / "meta/flywheel_pending.log"


def test_a_pending_log_of_the_previous_format_is_recovered(tmp_path: Path, monkeypatch) -> None:
    """Logs written before the arrow payloads hold a parquet file per entry and no format key."""
    from flywheel.datasets.commit import encode_parquet, payload_table
    from flywheel.datasets.pending import read_entries, read_payload

    log = _saved_not_committed(tmp_path / "ds", monkeypatch, [3, 4])
    old = b""
    for entry in read_entries(log):
        assert entry.format == "arrow" and entry.crc is not None
        parquet = encode_parquet(payload_table(read_payload(log, entry), entry)).to_pybytes()
        add_line = json.dumps(entry.event, separators=(",", ":")).encode()
        old += b'{"size":%d,"add":%s}\n' % (len(parquet), add_line) + parquet  # as the previous writer wrote it
    log.write_bytes(old)
    assert [e.format for e in read_entries(log)] == ["parquet", "parquet"]
    assert [r.total_frames for r in DatasetReader(tmp_path / "ds").records] == [3, 4]  # readers see them
    with open_for_append(tmp_path / "ds") as w:  # the next writer commits them
        assert w.num_episodes == 2
    assert not log.exists()
    episode = DatasetReader(tmp_path / "ds").read_episode(1).columns
    assert episode["action"][:, 0].tolist() == [10, 11, 12, 13]


def test_a_payload_garbled_by_a_power_loss_is_dropped_with_what_follows(tmp_path: Path, monkeypatch) -> None:
    from flywheel.datasets.pending import read_entries

    log = _saved_not_committed(tmp_path / "ds", monkeypatch, [3, 4, 5])
    second = read_entries(log)[1]
    data = bytearray(log.read_bytes())
    data[second.offset + second.size // 2: second.offset + second.size // 2 + 64] = bytes(64)  # never written back
    log.write_bytes(bytes(data))
    assert [r.total_frames for r in DatasetReader(tmp_path / "ds").records] == [3]
    with open_for_append(tmp_path / "ds") as w:
        assert w.num_episodes == 1
        record(w, 2)
    assert [r.total_frames for r in DatasetReader(tmp_path / "ds").records] == [3, 2]


def test_batches_commit_when_full_or_when_the_writer_closes(tmp_path: Path, monkeypatch) -> None:
    import time

    from flywheel.datasets import commit

    monkeypatch.setattr(commit, "GATHER_S", 60.0)  # a batch would wait a minute for more episodes...
    monkeypatch.setattr(commit, "BATCH_BYTES", 1)  # ...were it not full at once
    sidecar = tmp_path / "ds/meta/flywheel_episodes.jsonl"
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=10, robot_type="arm") as w:
        record(w, 3)
        deadline = time.monotonic() + 10
        while sidecar.read_text().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sidecar.read_text().count("\n") == 2  # committed while the writer is open
        monkeypatch.setattr(commit, "BATCH_BYTES", 1 << 40)
        record(w, 4)
        started = time.monotonic()
    assert time.monotonic() - started < 10  # closing does not wait out the batch
    assert [r.total_frames for r in DatasetReader(tmp_path / "ds").records] == [3, 4]
