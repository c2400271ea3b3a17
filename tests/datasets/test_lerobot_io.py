"""LeRobot v2.1 folders: the export is checked field by field against the published v2.1 layout.

The reference is LeRobot's v2.1 ``lerobot/common/datasets/utils.py`` (path templates, DEFAULT_FEATURES,
``create_empty_dataset_info``, ``write_episode``/``write_task``/``write_episode_stats``) and what its
v2.1 → v3.0 converter reads (``data/*/*.parquet`` and ``videos/*/<key>/*.mp4`` globbed in sorted order,
``episodes.jsonl``/``tasks.jsonl``/``episodes_stats.jsonl``, ``info.json`` fps and features).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.lerobot_io import export_lerobot, import_lerobot
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.records import append_events, now
from flywheel.datasets.video import LOSSLESS_TOLERANCE
from flywheel.datasets.writer import create_dataset
from flywheel.errors import Conflict, IntegrityError, InvalidInput, NotFound

# --- the published LeRobot v2.1 layout ---------------------------------------------------------------
V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V21_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "codebase_version": str, "robot_type": str, "total_episodes": int, "total_frames": int, "total_tasks": int,
    "total_videos": int, "total_chunks": int, "chunks_size": int, "fps": int, "splits": dict,
    "data_path": str, "video_path": (str, type(None)), "features": dict,
}  # fmt: skip
V21_DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
V21_VIDEO_INFO_KEYS = {"video.fps", "video.height", "video.width", "video.channels", "video.codec",
                       "video.pix_fmt", "video.is_depth_map", "has_audio"}  # fmt: skip
ARROW_OF = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}

FPS = 10
H, W = 12, 16
FEATURES: dict[str, dict[str, Any]] = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
    "observation.images.front": {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"]},
    "action": {"dtype": "float32", "shape": [2], "names": None},
    "gripper": {"dtype": "float32", "shape": [1], "names": None},
}
EPISODES = [(6, "pick"), (8, "place"), (5, "pick"), (7, "wave")]  # (frames, task)


def _camera(t: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack(
        [np.stack([(xx * 8 + i * 9 + seed) % 256, (yy * 10 + seed * 7) % 256, np.full_like(xx, 30 * i % 256)], -1)
         for i in range(t)]
    ).astype(np.uint8)  # fmt: skip


def _source_episodes() -> list[EpisodeArrays]:
    rng = np.random.default_rng(3)
    out = []
    for i, (t, task) in enumerate(EPISODES):
        cols = {
            "observation.state": rng.standard_normal((t, 3)).astype(np.float32),
            "observation.images.front": _camera(t, i),
            "action": rng.standard_normal((t, 2)).astype(np.float32),
            "gripper": rng.random((t, 1)).astype(np.float32),
            "next.reward": rng.random((t, 1)).astype(np.float32),
        }
        out.append(EpisodeArrays(cols, task=task, success=i % 2 == 0))
    return out


@pytest.fixture
def flywheel_dataset(tmp_path: Path) -> tuple[Path, list[EpisodeArrays]]:
    """Four episodes; episode 1 trimmed to frames 2..6, episode 2 soft-deleted."""
    root = tmp_path / "fw"
    episodes = _source_episodes()
    with create_dataset(root, features=FEATURES, fps=FPS, robot_type="so100") as writer:
        for ep in episodes:
            writer.append_episode(ep)
    append_events(root, [
        {"op": "trim", "episode_index": 1, "start_frame": 2, "end_frame": 6, "at": now().isoformat()},
        {"op": "delete", "episode_index": 2, "at": now().isoformat()},
    ])  # fmt: skip
    return root, episodes


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _expected(episodes: list[EpisodeArrays]) -> list[tuple[EpisodeArrays, slice]]:
    """The exported episodes: 0 whole, 1 trimmed to 2..6, 3 whole (2 is deleted)."""
    return [(episodes[0], slice(0, 6)), (episodes[1], slice(2, 6)), (episodes[3], slice(0, 7))]


def test_export_info_json_follows_v21(tmp_path: Path, flywheel_dataset: tuple[Path, list[EpisodeArrays]]) -> None:
    root, _ = flywheel_dataset
    out = tmp_path / "plain"
    summary = export_lerobot(root, out)
    assert summary.index_map == {0: 0, 1: 1, 3: 2} and summary.skipped == {2: "soft-deleted"}
    info = json.loads((out / "meta/info.json").read_text())
    assert set(info) == set(V21_INFO_TYPES)
    for key, typ in V21_INFO_TYPES.items():
        assert isinstance(info[key], typ) and not isinstance(info[key], bool), key
    assert info["codebase_version"] == "v2.1"
    assert info["robot_type"] == "so100" and info["fps"] == FPS
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 17, 3)
    assert info["total_videos"] == 3 and info["total_chunks"] == 1 and info["chunks_size"] == 1000
    assert info["splits"] == {"train": "0:3"}
    assert info["data_path"] == V21_DATA_PATH and info["video_path"] == V21_VIDEO_PATH
    feats = info["features"]
    for key, spec in V21_DEFAULT_FEATURES.items():
        assert feats[key] == spec, key
    for key, spec in FEATURES.items():
        assert feats[key]["dtype"] == spec["dtype"] and feats[key]["shape"] == spec["shape"], key
        assert feats[key]["names"] == spec["names"], key
    for spec in feats.values():
        assert set(spec) <= {"dtype", "shape", "names", "info"}
        assert all(isinstance(n, int) for n in spec["shape"])
    video = feats["observation.images.front"]
    assert set(video["info"]) == V21_VIDEO_INFO_KEYS
    assert video["names"][2] in ("channel", "channels")  # LeRobot turns (h, w, c) into (c, h, w) by this
    assert (video["info"]["video.height"], video["info"]["video.width"]) == (H, W)
    assert video["info"]["video.fps"] == FPS and video["info"]["video.is_depth_map"] is False


def test_export_meta_jsonl_files_follow_v21(tmp_path: Path, flywheel_dataset: tuple[Path, list[EpisodeArrays]]) -> None:
    root, _ = flywheel_dataset
    out = tmp_path / "plain"
    export_lerobot(root, out)
    episodes = _jsonl(out / "meta/episodes.jsonl")
    assert episodes == [
        {"episode_index": 0, "tasks": ["pick"], "length": 6},
        {"episode_index": 1, "tasks": ["place"], "length": 4},
        {"episode_index": 2, "tasks": ["wave"], "length": 7},
    ]
    tasks = _jsonl(out / "meta/tasks.jsonl")
    assert all(set(t) == {"task_index", "task"} for t in tasks)
    assert [t["task_index"] for t in tasks] == [0, 1, 2]
    assert {t["task"] for t in tasks} == {"pick", "place", "wave"}
    stats = _jsonl(out / "meta/episodes_stats.jsonl")
    assert [s["episode_index"] for s in stats] == [0, 1, 2]
    info = json.loads((out / "meta/info.json").read_text())
    for line, length in zip(stats, (6, 4, 7), strict=True):
        assert set(line) == {"episode_index", "stats"}
        assert set(line["stats"]) == set(info["features"])  # every feature, defaults included
        for key, st in line["stats"].items():
            assert set(st) >= {"min", "max", "mean", "std", "count"}, key
            assert st["count"] == [length], key
            shape = info["features"][key]["shape"]
            if info["features"][key]["dtype"] == "video":
                assert np.asarray(st["mean"]).shape == (3, 1, 1)
                assert np.min(st["min"]) >= 0.0 and np.max(st["max"]) <= 1.0
            else:
                assert np.asarray(st["mean"]).shape == tuple(shape), key
        assert line["stats"]["frame_index"]["max"] == [length - 1]


def test_export_parquet_files_follow_v21(tmp_path: Path, flywheel_dataset: tuple[Path, list[EpisodeArrays]]) -> None:
    root, source = flywheel_dataset
    out = tmp_path / "plain"
    export_lerobot(root, out)
    info = json.loads((out / "meta/info.json").read_text())
    tasks = {t["task_index"]: t["task"] for t in _jsonl(out / "meta/tasks.jsonl")}
    non_video = {k: v for k, v in info["features"].items() if v["dtype"] != "video"}
    paths = sorted((out / "data").glob("*/*.parquet"))  # as the v2.1 -> v3.0 converter finds them
    assert paths == [out / V21_DATA_PATH.format(episode_chunk=0, episode_index=i) for i in range(3)]
    next_index = 0
    for i, (path, (ep, cut)) in enumerate(zip(paths, _expected(source), strict=True)):
        table = pq.read_table(path)
        assert set(table.column_names) == set(non_video)
        for key, spec in non_video.items():
            typ = table.schema.field(key).type
            if spec["shape"] == [1]:
                assert typ == ARROW_OF[spec["dtype"]], key
            else:
                assert pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ), key
                assert typ.value_type == ARROW_OF[spec["dtype"]], key
        t = table.num_rows
        col = {k: table.column(k).to_pylist() for k in table.column_names}
        assert col["episode_index"] == [i] * t
        assert col["frame_index"] == list(range(t))
        assert col["index"] == list(range(next_index, next_index + t))
        np.testing.assert_array_equal(np.float32(col["timestamp"]), np.arange(t, dtype=np.float32) / FPS)
        assert {tasks[x] for x in col["task_index"]} == {ep.task}
        assert col["next.done"] == [False] * (t - 1) + [True]
        np.testing.assert_array_equal(np.asarray(col["observation.state"], np.float32),
                                      ep.columns["observation.state"][cut])  # fmt: skip
        np.testing.assert_array_equal(np.asarray(col["gripper"], np.float32), ep.columns["gripper"][cut, 0])
        next_index += t


def test_export_videos_and_nothing_else(tmp_path: Path, flywheel_dataset: tuple[Path, list[EpisodeArrays]]) -> None:
    root, source = flywheel_dataset
    out = tmp_path / "plain"
    export_lerobot(root, out)
    key = "observation.images.front"
    videos = sorted((out / "videos").glob(f"*/{key}/*.mp4"))  # the converter's glob
    assert videos == [out / V21_VIDEO_PATH.format(episode_chunk=0, video_key=key, episode_index=i) for i in range(3)]
    for path, (ep, cut) in zip(videos, _expected(source), strict=True):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        expected = ep.columns[key][cut]
        assert frames.shape == expected.shape
        assert np.abs(frames.astype(int) - expected).max() <= 2 * LOSSLESS_TOLERANCE  # two encodes
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {
        "meta/info.json", "meta/episodes.jsonl", "meta/tasks.jsonl", "meta/episodes_stats.jsonl",
        *(V21_DATA_PATH.format(episode_chunk=0, episode_index=i) for i in range(3)),
        *(V21_VIDEO_PATH.format(episode_chunk=0, video_key=key, episode_index=i) for i in range(3)),
    }  # fmt: skip
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_refuses_a_non_empty_target(tmp_path: Path, flywheel_dataset: tuple[Path, list[EpisodeArrays]]) -> None:
    root, _ = flywheel_dataset
    out = tmp_path / "plain"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(Conflict):
        export_lerobot(root, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(NotFound):
        export_lerobot(tmp_path / "nothing", tmp_path / "out2")


def test_round_trip_through_a_plain_folder(tmp_path: Path, flywheel_dataset: tuple[Path, list[EpisodeArrays]]) -> None:
    root, source = flywheel_dataset
    export_lerobot(root, tmp_path / "plain")
    summary = import_lerobot(tmp_path / "plain", tmp_path / "back")
    assert (summary.episodes, summary.frames) == (3, 17)
    reader = DatasetReader(tmp_path / "back")
    assert reader.fps == FPS
    assert {k: {f: v[f] for f in ("dtype", "shape", "names")} for k, v in reader.features.items()} == FEATURES
    for rec, (ep, cut) in zip(reader.records, _expected(source), strict=True):
        got = reader.read_episode(rec.episode_index)
        assert got.task == ep.task and rec.source == "import:lerobot"
        for key in ("observation.state", "action", "gripper", "next.reward"):
            np.testing.assert_array_equal(got.columns[key], ep.columns[key][cut], err_msg=key)
        diff = got.columns["observation.images.front"].astype(int) - ep.columns["observation.images.front"][cut]
        assert np.abs(diff).max() <= 3 * LOSSLESS_TOLERANCE


def _write_lerobot_folder(root: Path, *, version: str = "v2.1", image: bool = False) -> None:
    """A folder as LeRobot writes it: variable-length list columns, AV1 yuv420p videos."""
    features = {
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["a", "b"]},
        "action": {"dtype": "float32", "shape": [2], "names": None},
        "observation.images.top": {"dtype": "image" if image else "video", "shape": [16, 16, 3],
                                   "names": ["height", "width", "channel"]},
        **V21_DEFAULT_FEATURES,
    }  # fmt: skip
    info = {"codebase_version": version, "robot_type": "koch", "total_episodes": 2, "total_frames": 9,
            "total_tasks": 1, "total_videos": 2, "total_chunks": 1, "chunks_size": 1000, "fps": 30,
            "splits": {"train": "0:2"}, "data_path": V21_DATA_PATH, "video_path": V21_VIDEO_PATH,
            "features": features}  # fmt: skip
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "push the T"}) + "\n")
    lengths = [4, 5]
    (root / "meta/episodes.jsonl").write_text(
        "".join(json.dumps({"episode_index": i, "tasks": ["push the T"], "length": n}) + "\n"
                for i, n in enumerate(lengths)))  # fmt: skip
    start = 0
    for i, n in enumerate(lengths):
        frames = np.arange(n)
        table = pa.table({
            "observation.state": pa.array([[float(f), -float(f)] for f in frames], pa.list_(pa.float32())),
            "action": pa.array([[0.5 * f, 1.0] for f in frames], pa.list_(pa.float32())),
            "timestamp": pa.array(frames / 30, pa.float32()),
            "frame_index": pa.array(frames, pa.int64()),
            "episode_index": pa.array([i] * n, pa.int64()),
            "index": pa.array(frames + start, pa.int64()),
            "task_index": pa.array([0] * n, pa.int64()),
        })  # fmt: skip
        path = root / V21_DATA_PATH.format(episode_chunk=0, episode_index=i)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        start += n
        vpath = root / V21_VIDEO_PATH.format(episode_chunk=0, video_key="observation.images.top", episode_index=i)
        vpath.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(vpath), "w") as container:
            stream = container.add_stream("libsvtav1", rate=30)
            stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
            stream.options = {"crf": "10", "preset": "12"}
            for f in frames:
                image_ = np.full((16, 16, 3), 40 * f + 20 * i, np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image_, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def test_import_a_folder_written_like_lerobot(tmp_path: Path) -> None:
    _write_lerobot_folder(tmp_path / "pusht")
    summary = import_lerobot(tmp_path / "pusht", tmp_path / "fw")
    assert summary.index_map == {0: 0, 1: 1} and summary.frames == 9
    reader = DatasetReader(tmp_path / "fw")
    assert reader.fps == 30 and reader.info["robot_type"] == "koch"
    assert set(reader.features) == {"observation.state", "action", "observation.images.top"}
    ep = reader.read_episode(1)
    assert ep.task == "push the T" and ep.num_frames == 5
    np.testing.assert_array_equal(ep.columns["observation.state"][:, 0], np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(ep.columns["action"][:, 0], 0.5 * np.arange(5, dtype=np.float32))
    cam = ep.columns["observation.images.top"].astype(int)
    assert np.abs(cam[:, 8, 8, 0] - (40 * np.arange(5) + 20)).max() <= 6  # AV1, lossy


def test_import_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        import_lerobot(tmp_path / "nothing", tmp_path / "fw")
    _write_lerobot_folder(tmp_path / "v3", version="v3.0")
    with pytest.raises(InvalidInput) as info:
        import_lerobot(tmp_path / "v3", tmp_path / "fw")
    assert info.value.field == "codebase_version" and info.value.allowed == ["v2.0", "v2.1"]
    _write_lerobot_folder(tmp_path / "img", image=True)
    with pytest.raises(InvalidInput) as info:
        import_lerobot(tmp_path / "img", tmp_path / "fw")
    assert info.value.field == "features.observation.images.top.dtype"
    _write_lerobot_folder(tmp_path / "broken")
    (tmp_path / "broken" / V21_DATA_PATH.format(episode_chunk=0, episode_index=1)).write_bytes(b"PAR1 garbage")
    with pytest.raises(IntegrityError, match="episode 1"):
        import_lerobot(tmp_path / "broken", tmp_path / "fw")
    assert not (tmp_path / "fw").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
