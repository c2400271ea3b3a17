"""Import ROS 2 bags (sqlite3 or MCAP storage) as episodes, with the pure-Python ``rosbags`` package.

The user maps topics to features with ``TopicMap``: a topic, the feature key, and a field path inside the
message. A field path is a dotted attribute path (``position`` of a JointState, ``data`` of a
Float64MultiArray, ``linear`` or ``linear.x`` of a Twist); several paths may be joined with commas and
are concatenated (``"linear,angular"`` gives 6 values). Whatever the path reaches is flattened into a
vector: numeric arrays as they are, scalars as one value, nested messages (Vector3, Quaternion, Pose) as
their numeric fields in declaration order. A ``sensor_msgs/msg/Image`` mapped to a ``video`` feature
(empty field path) becomes an (H, W, 3) RGB frame (encodings rgb8, bgr8, mono8).

Resampling: every mapped topic is put on one clock at the dataset's fps. The episode spans the overlap
of all topics — from the latest first message to the earliest last message — so every frame has real
data behind it; frame k is at ``start + k / fps``. ``method="hold"`` (zero-order hold) takes the latest
message at or before each frame time; ``method="linear"`` interpolates linearly between the two messages
around it (float features only; integer, bool and video features always hold). Time is the bag's
receive time by default, or the message ``header.stamp`` with ``clock="header"``.

Splitting: with ``split_topic`` every message on that topic starts a new episode (the bag start starts the
first); each piece is resampled over its own overlap, and pieces without an overlap are skipped. If the
marker messages carry a string ``data`` field (``std_msgs/msg/String``), it becomes the task of the
episode it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from flywheel.datasets.episode import EpisodeArrays
from flywheel.errors import InvalidInput, NotFound

NS = 1_000_000_000
METHODS = ("hold", "linear")
CLOCKS = ("bag", "header")
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "bool": np.bool_,
          "video": np.uint8}  # fmt: skip
_IMAGE = "sensor_msgs/msg/Image"


@dataclass(frozen=True)
class TopicMap:
    """One topic (and a field path inside its messages) mapped to one feature.

    Attributes:
        topic: the ROS topic, e.g. "/joint_states".
        feature: the feature key, e.g. "observation.state".
        field: dotted path(s) inside the message, comma-joined to concatenate, e.g. "position" or
            "linear,angular"; empty for the whole message (an Image, or a small message like Vector3).
        dtype: the feature dtype, one of ``DTYPES``.
        names: optional names of the vector's entries.

    Example:
        >>> TopicMap("/cmd_vel", "action", "linear,angular").field
        'linear,angular'
    """

    topic: str
    feature: str
    field: str = ""
    dtype: str = "float32"
    names: list[str] | None = None


class RosbagImport(NamedTuple):
    """The features the mappings produced, the fps and the episodes."""

    features: dict[str, dict[str, Any]]
    fps: int
    episodes: list[EpisodeArrays]


class _Series(NamedTuple):
    times: np.ndarray  # int64 ns, sorted
    values: np.ndarray  # (N, *shape)


def _message_fields(msg: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(msg) if not f.name.startswith("__")]


def _get(msg: Any, path: str, where: str) -> Any:
    node = msg
    for part in path.split("."):
        if not dataclasses.is_dataclass(node) or part not in _message_fields(node):
            allowed = _message_fields(node) if dataclasses.is_dataclass(node) else []
            kind = getattr(node, "__msgtype__", type(node).__name__)
            raise InvalidInput(f"{kind} has no field {part!r} (path {path!r})", field=where, allowed=allowed)
        node = getattr(node, part)
    return node


def _flatten(value: Any, where: str) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise InvalidInput(f"reaches a {value.dtype} array, not numbers", field=where)
        return [value.ravel()]
    if isinstance(value, bool | int | float | np.number | np.bool_):
        return [np.asarray([value])]
    if dataclasses.is_dataclass(value):
        return [part for name in _message_fields(value) for part in _flatten(getattr(value, name), where)]
    if isinstance(value, list) and all(isinstance(v, int | float) for v in value):
        return [np.asarray(value, dtype=np.float64)]
    kind = type(value).__name__
    if isinstance(value, list | tuple) and value:
        kind += f" of {type(value[0]).__name__}"
    raise InvalidInput(
        f"reaches a {kind} value, not numbers", field=where,
        allowed="numeric fields, numeric arrays or messages made of them",
    )  # fmt: skip


def _image(msg: Any, where: str) -> np.ndarray:
    channels = {"rgb8": 3, "bgr8": 3, "mono8": 1}
    if msg.encoding not in channels:
        raise InvalidInput(f"image encoding {msg.encoding!r} is not supported", field=where, allowed=list(channels))
    c = channels[msg.encoding]
    rows = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * c]
    img = rows.reshape(msg.height, msg.width, c)
    if msg.encoding == "bgr8":
        img = img[..., ::-1]
    return np.repeat(img, 3, axis=2) if c == 1 else img


def _extract(msg: Any, mapping: TopicMap, where: str) -> np.ndarray:
    if mapping.dtype == "video":
        node = _get(msg, mapping.field, where) if mapping.field else msg
        if getattr(node, "__msgtype__", None) != _IMAGE:
            raise InvalidInput("video features need a sensor_msgs/msg/Image", field=where, allowed=[_IMAGE])
        return _image(node, where)
    parts = []
    for path in [p.strip() for p in mapping.field.split(",")] if mapping.field else [""]:
        parts += _flatten(_get(msg, path, where) if path else msg, where)
    return np.concatenate(parts) if parts else np.zeros(0)


def _stamp(msg: Any, where: str) -> int:
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        raise InvalidInput("clock='header' needs messages with a header", field=where, allowed=list(CLOCKS))
    return int(stamp.sec) * NS + int(stamp.nanosec)


def _check_args(mappings: Sequence[TopicMap], fps: int, method: str, clock: str) -> None:
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise InvalidInput(f"must be a positive integer, got {fps!r}", field="fps")
    if method not in METHODS:
        raise InvalidInput(f"unknown resampling method {method!r}", field="method", allowed=list(METHODS))
    if clock not in CLOCKS:
        raise InvalidInput(f"unknown clock {clock!r}", field="clock", allowed=list(CLOCKS))
    if not mappings:
        raise InvalidInput("map at least one topic to a feature", field="mappings")
    seen: set[str] = set()
    for i, m in enumerate(mappings):
        if not isinstance(m, TopicMap):
            raise InvalidInput(f"must be a TopicMap, got {type(m).__name__}", field=f"mappings[{i}]")
        if m.dtype not in DTYPES:
            raise InvalidInput(f"unsupported dtype {m.dtype!r}", field=f"mappings[{i}].dtype", allowed=list(DTYPES))
        if m.feature in seen:
            raise InvalidInput(f"feature {m.feature!r} is mapped twice", field=f"mappings[{i}].feature")
        seen.add(m.feature)


def _read(
    path: Path, mappings: Sequence[TopicMap], clock: str, split_topic: str | None
) -> tuple[dict[str, _Series], list[tuple[int, str | None]], str]:
    """Read the mapped topics into time series, and the split markers (time, task)."""
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated error types for unreadable bags
        raise InvalidInput(f"{path} is not a readable rosbag2: {exc}", field="path") from exc
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        wanted = [split_topic] if split_topic else []
        for i, m in enumerate(mappings):
            if m.topic not in topics:
                raise InvalidInput(f"the bag has no topic {m.topic!r}", field=f"mappings[{i}].topic",
                                   allowed=sorted(topics))  # fmt: skip
        if split_topic is not None and split_topic not in topics:
            raise InvalidInput(f"the bag has no topic {split_topic!r}", field="split_topic", allowed=sorted(topics))
        by_topic: dict[str, list[int]] = {}
        for i, m in enumerate(mappings):
            by_topic.setdefault(m.topic, []).append(i)
        wanted += list(by_topic)
        conns = [c for c in reader.connections if c.topic in wanted]
        times: dict[int, list[int]] = {i: [] for i in range(len(mappings))}
        values: dict[int, list[np.ndarray]] = {i: [] for i in range(len(mappings))}
        markers: list[tuple[int, str | None]] = []
        for conn, t_bag, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == split_topic:
                text = getattr(msg, "data", None)
                markers.append((t_bag, text if isinstance(text, str) else None))
            for i in by_topic.get(conn.topic, []):
                where = f"mappings[{i}].field"
                value = _extract(msg, mappings[i], where)
                if values[i] and value.shape != values[i][0].shape:
                    raise InvalidInput(
                        f"topic {conn.topic!r} changes size from {list(values[i][0].shape)} to "
                        f"{list(value.shape)} at t={t_bag} ns", field=where,
                    )  # fmt: skip
                times[i].append(_stamp(msg, f"mappings[{i}]") if clock == "header" else t_bag)
                values[i].append(value)
        files = list(path.iterdir()) if path.is_dir() else [path]
        storage = "mcap" if any(f.suffix == ".mcap" for f in files) else "sqlite3"
    finally:
        reader.close()
    series = {}
    for i, m in enumerate(mappings):
        if not times[i]:
            raise InvalidInput(f"topic {m.topic!r} has no messages", field=f"mappings[{i}].topic")
        t = np.asarray(times[i], np.int64)
        order = np.argsort(t, kind="stable")
        series[m.feature] = _Series(t[order], np.stack(values[i])[order])
    return series, sorted(markers, key=lambda x: x[0]), storage


def _resample(s: _Series, grid: np.ndarray, method: str, dtype: np.dtype) -> np.ndarray:
    idx = np.searchsorted(s.times, grid, side="right") - 1
    if method == "hold" or len(s.times) == 1 or np.dtype(dtype).kind != "f":
        return s.values[idx].astype(dtype)
    lo = np.clip(idx, 0, len(s.times) - 2)
    t0, t1 = s.times[lo], s.times[lo + 1]
    span = (t1 - t0).astype(np.float64)
    w = np.where(span > 0, (grid - t0) / np.where(span > 0, span, 1), 1.0)
    w = w.reshape((-1,) + (1,) * (s.values.ndim - 1))
    v0, v1 = s.values[lo].astype(np.float64), s.values[lo + 1].astype(np.float64)
    return (v0 * (1 - w) + v1 * w).astype(dtype)


def import_rosbag(
    path: Path,
    mappings: Sequence[TopicMap],
    *,
    fps: int,
    task: str = "",
    method: Literal["hold", "linear"] = "hold",
    clock: Literal["bag", "header"] = "bag",
    split_topic: str | None = None,
) -> RosbagImport:
    """Read a rosbag2 folder (sqlite3 or MCAP) into episodes resampled at ``fps``.

    Args:
        path: the bag folder (with metadata.yaml) or a single .db3/.mcap file.
        mappings: which topic and field becomes which feature.
        fps: the dataset's frame rate.
        task: the task of every episode (unless a String marker names it).
        method: "hold" (zero-order hold) or "linear" interpolation.
        clock: "bag" receive time or "header" stamps.
        split_topic: a topic whose messages start new episodes; None for one episode per bag.

    Returns:
        ``RosbagImport(features, fps, episodes)``.

    Raises:
        NotFound: the bag does not exist.
        InvalidInput: an unreadable bag, a topic the bag lacks, a field path that does not exist or is
            not numeric, topics that never overlap in time, or bad arguments.

    Example:
        >>> features, fps, episodes = import_rosbag(
        ...     Path("run1"), [TopicMap("/joint_states", "observation.state", "position"),
        ...                    TopicMap("/cmd_vel", "action", "linear,angular")], fps=30)
    """
    path = Path(path)
    _check_args(mappings, fps, method, clock)
    if not path.exists():
        raise NotFound("rosbag", path)
    series, markers, storage = _read(path, mappings, clock, split_topic)
    starts = [min(s.times[0] for s in series.values()), *(t for t, _ in markers)]
    tasks = [task, *((text if text is not None else task) for _, text in markers)]
    bounds = [*starts[1:], np.iinfo(np.int64).max]
    episodes = []
    for piece, (lo, hi) in enumerate(zip(starts, bounds, strict=True)):
        parts = {k: _Series(s.times[m], s.values[m]) for k, s in series.items()
                 for m in [(s.times >= lo) & (s.times < hi)]}  # fmt: skip
        if any(len(p.times) == 0 for p in parts.values()):
            continue
        start = max(int(p.times[0]) for p in parts.values())
        end = min(int(p.times[-1]) for p in parts.values())
        if end < start:
            if split_topic is not None:
                continue
            ranges = {k: (int(p.times[0]), int(p.times[-1])) for k, p in parts.items()}
            raise InvalidInput(f"the mapped topics never overlap in time: {ranges}", field="mappings")
        n = (end - start) * fps // NS + 1
        grid = start + (np.arange(n, dtype=np.int64) * NS) // fps
        columns = {m.feature: _resample(parts[m.feature], grid, method, np.dtype(DTYPES[m.dtype])) for m in mappings}
        meta = {"source": "rosbag2", "bag": path.name, "storage": storage, "start_ns": start, "piece": piece,
                "topics": {m.feature: m.topic for m in mappings}}  # fmt: skip
        episodes.append(EpisodeArrays(columns, task=tasks[piece], success=None, metadata=meta))
    features = {}
    for i, m in enumerate(mappings):
        shape = list(series[m.feature].values.shape[1:])
        if m.names and (len(shape) != 1 or len(m.names) != shape[0]):
            raise InvalidInput(f"{len(m.names)} names for a feature of shape {shape}", field=f"mappings[{i}].names")
        features[m.feature] = {"dtype": m.dtype, "shape": shape,
                               "names": list(m.names) if m.names else None}  # fmt: skip
    return RosbagImport(features, fps, episodes)
