"""The on-disk format of a dataset folder, declared in one place (LeRobot v2.1 layout).

A dataset folder::

    meta/info.json                 codebase_version "v2.1", fps, features, totals, path templates
    meta/episodes.jsonl            one line per episode: episode_index, tasks, length
    meta/tasks.jsonl               one line per task: task_index, task
    meta/episodes_stats.jsonl      one line per episode: per-feature min/max/mean/std/count
    meta/flywheel_episodes.jsonl   Flywheel's append-only log of episode record events (the commit point)
    meta/flywheel_pending.log      episodes saved but not yet committed: records and parquet bytes
    data/chunk-XXX/episode_XXXXXX.parquet
    videos/chunk-XXX/<video_key>/episode_XXXXXX.mp4

The folder chunk of an episode is ``episode_index // CHUNKS_SIZE`` as LeRobot computes it, so the folder
stays loadable by LeRobot. Flywheel's *chunk id* (the append batch an episode came in) is a field of the
episode record, not a folder.

Features are plain ``{"dtype", "shape", "names"}`` dicts. Numeric features have a rank-1 shape ``[n]``;
camera features have dtype ``"video"`` and shape ``[H, W, 3]``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flywheel.errors import IntegrityError, InvalidInput

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000
DEFAULT_FPS = 50

INFO_PATH = "meta/info.json"
EPISODES_PATH = "meta/episodes.jsonl"
TASKS_PATH = "meta/tasks.jsonl"
EPISODES_STATS_PATH = "meta/episodes_stats.jsonl"
SIDECAR_PATH = "meta/flywheel_episodes.jsonl"
PENDING_PATH = "meta/flywheel_pending.log"
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
WRITE_LOCK = ".flywheel-write.lock"
EDIT_LOCK = ".flywheel-edit.lock"

#: Columns every episode file has besides the user features (LeRobot's defaults plus next.reward/done).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "next.done": {"dtype": "bool", "shape": [1], "names": None},
}
#: Default columns a caller may supply per frame; the others are computed by the writer.
OPTIONAL_COLUMNS = ("next.reward", "next.done")
NUMERIC_DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
FEATURE_DTYPES = (*NUMERIC_DTYPES, "video")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


class DatasetVersionError(InvalidInput):
    """The folder holds a dataset of another codebase version than the one Flywheel reads."""


class DatasetCorruptError(IntegrityError):
    """A file of the dataset is missing, truncated or does not match its metadata.

    Attributes:
        episode_index: the episode the damaged file belongs to, if any.
        path: the damaged file.
    """

    def __init__(self, message: str, *, episode_index: int | None = None, path: Path | None = None) -> None:
        self.episode_index = episode_index
        self.path = path
        where = f"episode {episode_index}: " if episode_index is not None else ""
        super().__init__(f"{where}{message}", hint="run `flywheel dataset verify` to list every damaged file")


def episode_chunk(episode_index: int) -> int:
    """The folder chunk of an episode, as LeRobot computes it.

    Example:
        >>> episode_chunk(1234)
        1
    """
    return episode_index // CHUNKS_SIZE


def data_file(root: Path, episode_index: int) -> Path:
    """The parquet file of an episode.

    Example:
        >>> data_file(Path("ds"), 3).as_posix()
        'ds/data/chunk-000/episode_000003.parquet'
    """
    return root / DATA_PATH.format(episode_chunk=episode_chunk(episode_index), episode_index=episode_index)


def video_file(root: Path, video_key: str, episode_index: int) -> Path:
    """The mp4 file of one camera feature of an episode.

    Example:
        >>> video_file(Path("ds"), "observation.images.top", 3).as_posix()
        'ds/videos/chunk-000/observation.images.top/episode_000003.mp4'
    """
    rel = VIDEO_PATH.format(
        episode_chunk=episode_chunk(episode_index), video_key=video_key, episode_index=episode_index
    )
    return root / rel


def validate_features(features: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Check user feature declarations and return them normalised (shape as list, names present).

    Args:
        features: feature key -> ``{"dtype": ..., "shape": [...], "names": ...}``.

    Returns:
        A new dict with the same keys, ``shape`` as a list of ints and ``names`` defaulted to None.

    Raises:
        InvalidInput: naming the feature and the field that is wrong.

    Example:
        >>> validate_features({"action": {"dtype": "float32", "shape": (2,)}})
        {'action': {'dtype': 'float32', 'shape': [2], 'names': None}}
    """
    if not isinstance(features, dict) or not features:
        raise InvalidInput("must be a non-empty dict of feature key -> {dtype, shape, names}", field="features")
    out: dict[str, dict[str, Any]] = {}
    for key, spec in features.items():
        field = f"features.{key}"
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidInput("feature keys may use letters, digits and _ . -", field=field)
        if key in DEFAULT_FEATURES:
            default = DEFAULT_FEATURES[key]
            if isinstance(spec, dict) and spec.get("dtype") == default["dtype"] and list(
                spec.get("shape") or []
            ) == default["shape"]:
                continue  # the default column, as info.json lists it: nothing to declare
            raise InvalidInput("is a column every episode has already", field=field,
                               allowed="any key except " + ", ".join(DEFAULT_FEATURES))
        if not isinstance(spec, dict):
            raise InvalidInput("must be a dict with dtype and shape", field=field)
        dtype = spec.get("dtype")
        if dtype not in FEATURE_DTYPES:
            raise InvalidInput(f"unknown dtype {dtype!r}", field=f"{field}.dtype", allowed=list(FEATURE_DTYPES))
        shape = spec.get("shape")
        if (not isinstance(shape, list | tuple) or not shape
                or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in shape)):
            raise InvalidInput(f"must be a list of positive ints, got {shape!r}", field=f"{field}.shape")
        shape = [int(n) for n in shape]
        if dtype == "video" and (len(shape) != 3 or shape[2] != 3):
            raise InvalidInput(f"video features have shape [H, W, 3], got {shape}", field=f"{field}.shape")
        if dtype != "video" and len(shape) != 1:
            raise InvalidInput(f"numeric features have a rank-1 shape [n], got {shape}", field=f"{field}.shape")
        entry: dict[str, Any] = {"dtype": dtype, "shape": shape, "names": spec.get("names")}
        if dtype == "video" and "info" in spec:
            entry["info"] = spec["info"]
        out[key] = entry
    return out


def user_features(features: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The features a caller supplies (info.json features without the default columns)."""
    return {k: v for k, v in features.items() if k not in DEFAULT_FEATURES}


def video_keys(features: dict[str, dict[str, Any]]) -> list[str]:
    """The camera feature keys, in declaration order."""
    return [k for k, v in features.items() if v["dtype"] == "video"]


def make_info(
    *, features: dict[str, dict[str, Any]], fps: int, robot_type: str, total_episodes: int = 0,
    total_frames: int = 0, total_tasks: int = 0,
) -> dict[str, Any]:
    """Build the ``meta/info.json`` dict of LeRobot v2.1 for the given totals.

    Example:
        >>> make_info(features={"a": {"dtype": "float32", "shape": [1], "names": None}},
        ...           fps=50, robot_type="arm")["splits"]
        {'train': '0:0'}
    """
    feats = dict(features)
    for key in video_keys(feats):
        h, w, c = feats[key]["shape"]
        feats[key] = {
            **feats[key],
            "names": feats[key].get("names") or ["height", "width", "channels"],
            "info": feats[key].get("info") or {
                "video.fps": float(fps), "video.height": h, "video.width": w, "video.channels": c,
                "video.codec": "h264", "video.pix_fmt": "yuv444p", "video.is_depth_map": False,
                "has_audio": False,
            },
        }
    feats.update({k: dict(v) for k, v in DEFAULT_FEATURES.items()})
    n_videos = len(video_keys(features))
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "total_videos": total_episodes * n_videos,
        "total_chunks": math.ceil(total_episodes / CHUNKS_SIZE),
        "chunks_size": CHUNKS_SIZE,
        "fps": fps,
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": feats,
    }


def load_info(root: Path) -> dict[str, Any]:
    """Read and check ``meta/info.json`` of a dataset folder.

    Raises:
        NotFound: the folder holds no dataset.
        DatasetVersionError: the dataset is of another codebase version.
        DatasetCorruptError: info.json is not valid JSON or lacks a required field.

    Example:
        >>> load_info(Path("my_dataset"))["fps"]  # doctest: +SKIP
        50
    """
    from flywheel.errors import NotFound

    path = Path(root) / INFO_PATH
    if not path.is_file():
        raise NotFound("dataset", root, hint="create it with create_dataset()")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetCorruptError(f"{path} is not readable JSON: {exc}", path=path) from exc
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise DatasetVersionError(f"dataset at {root} has version {version!r}", field="codebase_version",
                                  allowed=CODEBASE_VERSION)
    for field in ("fps", "features", "robot_type"):
        if field not in info:
            raise DatasetCorruptError(f"{path} lacks {field!r}", path=path)
    return info


def arrow_type(spec: dict[str, Any]) -> pa.DataType:
    """The arrow column type of a numeric feature (scalar for shape [1], fixed-size list otherwise)."""
    base = pa.from_numpy_dtype(np.dtype(spec["dtype"]))
    n = spec["shape"][0]
    return base if n == 1 else pa.list_(base, n)


def arrow_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    """The arrow schema of an episode parquet file: numeric user features then the default columns."""
    fields = [pa.field(k, arrow_type(v)) for k, v in user_features(features).items() if v["dtype"] != "video"]
    fields += [pa.field(k, arrow_type(v)) for k, v in DEFAULT_FEATURES.items()]
    return pa.schema(fields)


def numpy_to_arrow(values: np.ndarray) -> pa.Array:
    """A 1-D numeric or bool numpy array as an arrow array, zero-copy where arrow allows.

    (``pa.array`` on numpy input imports pandas on first use, half a second on a small machine:
    too long for the first episode of a recording.)

    Example:
        >>> numpy_to_arrow(np.array([True, False])).to_pylist()
        [True, False]
    """
    flat = np.ascontiguousarray(values.reshape(-1))
    if flat.dtype == np.bool_:
        bits = np.packbits(flat, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(flat), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(pa.from_numpy_dtype(flat.dtype), len(flat), [None, pa.py_buffer(flat)])


def to_arrow(values: np.ndarray, spec: dict[str, Any]) -> pa.Array:
    """Turn a (T, n) numpy column into its arrow column without a Python loop."""
    n = spec["shape"][0]
    if n == 1:
        return numpy_to_arrow(values)
    return pa.FixedSizeListArray.from_arrays(numpy_to_arrow(values), n)


def from_arrow(column: pa.ChunkedArray | pa.Array, spec: dict[str, Any]) -> np.ndarray:
    """Turn an arrow column back into a (T, n) numpy array of the feature's dtype."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = spec["shape"][0]
    dtype = np.dtype(spec["dtype"])
    if isinstance(arr.type, pa.FixedSizeListType | pa.ListType):
        flat = arr.flatten().to_numpy(zero_copy_only=False)
    else:
        flat = arr.to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=dtype).reshape(len(arr), n)
