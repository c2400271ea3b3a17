"""RLDS episodes as TFRecord files, written and read with the ``tfrecord`` package (no TensorFlow).

Layout: one ``tf.train.Example`` per **episode**, the way TFDS stores RLDS datasets, preceded by one
header Example. The step fields are those of ``flywheel.datasets.rlds_steps`` (``observation/<k>``, ``action``,
``reward``, ``discount``, ``is_first``, ``is_last``, ``is_terminal``, ``timestamp``, ``extras/<key>``),
stored under ``steps/<field>`` and concatenated over the T steps of the episode:

- float32 features, reward, discount, timestamp → ``float_list`` of T × prod(shape) values (exact);
- integer and bool features, and the flags → ``int64_list`` of T × prod(shape) values (exact);
- float64, video and image features → ``bytes_list`` of T entries, each the raw little-endian array of
  one step (exact).

Episode metadata: ``episode_metadata/episode_id`` and ``/task`` (bytes), ``/success`` (int64: 1, 0, or -1
for unknown), ``/operator_id`` (bytes, anonymised, absent when unknown) and ``/metadata`` (JSON bytes).
The header Example has one key, ``flywheel/header``: JSON bytes of ``{"format", "version", "fps",
"features", "origin"}``. Files without a header are read too: every ``steps/<field>`` becomes a flat
1-D feature (float → float32, int → int64), and ``fps`` must be given.

Every record's two CRC-32C checksums are verified on import: a truncated or corrupt record is reported
as a problem of that record and reading stops there.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tfrecord import example_pb2
from tfrecord.writer import TFRecordWriter

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.export_manifest import ExportManifest, file_entry, manifest_path
from flywheel.datasets.rlds_export_plan import episode_metadata, export_features, header_of, operator_of, plan_export
from flywheel.datasets.rlds_report import Problem
from flywheel.datasets.rlds_steps import (
    DTYPES,
    FLAGS,
    RawEpisode,
    RldsImport,
    check_episode,
    check_features,
    episode_steps,
    feature_key,
    run_import,
    step_field,
)
from flywheel.durable import commit_temp, temp_path
from flywheel.errors import InvalidInput, NotFound

HEADER_KEY = "flywheel/header"
_SCALARS = {"reward": np.float32, "discount": np.float32, "timestamp": np.float32}


def _kind(dtype: np.dtype) -> str:
    """The Example list kind a numpy dtype is stored in: "float", "int" or "byte"."""
    if dtype == np.float32:
        return "float"
    if dtype.kind in "iub" and dtype != np.uint8:
        return "int"
    return "byte"


def _storage(features: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, np.dtype, tuple[int, ...]]]:
    """Step field -> (list kind, numpy dtype, per-step shape) for every stored field."""
    out = {}
    for key, spec in features.items():
        dtype = DTYPES[spec["dtype"]]
        kind = "byte" if spec["dtype"] in ("video", "image", "uint8") else _kind(dtype)
        out[step_field(key)] = (kind, dtype, tuple(spec["shape"]))
    for name, dtype in _SCALARS.items():
        out.setdefault(name, ("float", np.dtype(dtype), ()))
    for name in FLAGS:
        out[name] = ("int", np.dtype(np.bool_), ())
    return out


def _encode(kind: str, col: np.ndarray) -> Any:
    if kind == "float":
        return col.astype(np.float32).ravel()
    if kind == "int":
        return col.astype(np.int64).ravel()
    return [np.ascontiguousarray(step).astype(step.dtype.newbyteorder("<")).tobytes() for step in col]


def export_rlds_tfrecord(
    episodes: Iterable[EpisodeArrays],
    features: Mapping[str, Any],
    fps: int,
    out_path: Path,
    *,
    origin: str,
    operator_ids: Mapping[int, str] | None = None,
    salt: str | bytes | None = None,
) -> ExportManifest:
    """Export episodes as an RLDS TFRecord file (header + one Example per episode) and write the manifest.

    Args:
        episodes: the episodes, each with one column per feature.
        features: LeRobot-style features; must contain ``action``.
        fps: frames per second of the dataset.
        out_path: the ``.tfrecord`` file (crash-safe); the manifest goes to ``<out_path>.manifest.json``.
        origin: a tag naming where the data comes from.
        operator_ids: episode position -> operator id, overriding ``metadata["operator_id"]``.
        salt: the salt of the operator pseudonyms; random (and not stored) by default.

    Returns:
        The manifest (also written as JSON).

    Raises:
        InvalidInput: bad features, fps or origin, or an episode that does not match the features; nothing
            is written then.

    Example:
        >>> ep = EpisodeArrays({"action": np.zeros((3, 2), np.float32)}, task="wave")
        >>> export_rlds_tfrecord([ep], {"action": {"dtype": "float32", "shape": [2]}}, 10,
        ...                      Path("/tmp/ep.tfrecord"), origin="lab-a").steps
        3
    """
    plan = plan_export(features, fps, origin, salt)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out_path)
    n_episodes = n_steps = 0
    operators: dict[str, None] = {}
    episodes = iter(episodes)
    first = next(episodes, None)
    feats = export_features(plan, first) if isinstance(first, EpisodeArrays) else plan.features
    storage = _storage(feats)
    writer = TFRecordWriter(str(tmp))
    try:
        writer.write({HEADER_KEY: (json.dumps(header_of(feats, fps, origin)).encode(), "byte")})
        for position, episode in enumerate(_chain(first, episodes)):
            n_steps += check_episode(episode, feats, position)
            meta = episode_metadata(episode, position, operator_of(episode, position, operator_ids), plan)
            datum: dict[str, tuple[Any, str]] = {
                "episode_metadata/episode_id": (meta["episode_id"].encode(), "byte"),
                "episode_metadata/task": (meta["task"].encode(), "byte"),
                "episode_metadata/success": ({True: 1, False: 0, None: -1}[meta["success"]], "int"),
                "episode_metadata/metadata": (json.dumps(meta["metadata"]).encode(), "byte"),
            }
            if meta["operator_id"]:
                datum["episode_metadata/operator_id"] = (meta["operator_id"].encode(), "byte")
                operators[meta["operator_id"]] = None
            for path, col in episode_steps(episode, feats, fps).items():
                kind = storage[path][0]
                datum[f"steps/{path}"] = (_encode(kind, col), kind)
            writer.write(datum)
            n_episodes += 1
        writer.close()
        commit_temp(tmp, out_path)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    manifest = ExportManifest(
        format="rlds-tfrecord", origin=origin, fps=fps, episodes=n_episodes, steps=n_steps,
        files=[file_entry(out_path)], operators=list(operators), features=feats,
    )  # fmt: skip
    manifest.write(manifest_path(out_path))
    return manifest


def _chain(first: EpisodeArrays | None, rest: Iterator[EpisodeArrays]) -> Iterator[EpisodeArrays]:
    if first is not None:
        yield first
        yield from rest


# --------------------------------------------------------------------------- reading


def _records(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(record number, payload or None, problem or None) for every record; stops after a bad one."""
    masked_crc = TFRecordWriter.masked_crc
    with open(path, "rb") as fh:
        number = 0
        while True:
            head = fh.read(12)
            if not head:
                return
            offset = fh.tell() - len(head)
            if len(head) < 12:
                yield number, None, f"truncated record header at byte {offset}"
                return
            length_bytes, crc = head[:8], head[8:]
            if masked_crc(length_bytes) != crc:
                yield number, None, f"length checksum mismatch at byte {offset}"
                return
            (length,) = struct.unpack("<Q", length_bytes)
            payload = fh.read(length)
            tail = fh.read(4)
            if len(payload) < length or len(tail) < 4:
                yield number, None, f"truncated record at byte {offset}"
                return
            if masked_crc(payload) != tail:
                yield number, None, f"data checksum mismatch at byte {offset}"
                return
            yield number, payload, None
            number += 1


def _parse(payload: bytes) -> dict[str, tuple[str, Any]]:
    """An Example's features as key -> (kind, values); kind is "float", "int", "byte" or "" (empty)."""
    example = example_pb2.Example()
    example.ParseFromString(payload)
    out: dict[str, tuple[str, Any]] = {}
    for key, feat in example.features.feature.items():
        which = feat.WhichOneof("kind")
        if which == "float_list":
            out[key] = ("float", np.asarray(feat.float_list.value, np.float32))
        elif which == "int64_list":
            out[key] = ("int", np.asarray(feat.int64_list.value, np.int64))
        elif which == "bytes_list":
            out[key] = ("byte", list(feat.bytes_list.value))
        else:
            out[key] = ("", [])
    return out


def _text(record: Mapping[str, tuple[str, Any]], key: str) -> str | None:
    kind, value = record.get(key, ("", []))
    return value[0].decode("utf-8", "replace") if kind == "byte" and value else None


def _raw_episode(number: int, record: Mapping[str, tuple[str, Any]], storage: Mapping[str, Any]) -> RawEpisode:
    ident = _text(record, "episode_metadata/episode_id") or f"record #{number}"
    problems: list[Problem] = []
    meta: dict[str, Any] = {"task": _text(record, "episode_metadata/task") or ""}
    success = record.get("episode_metadata/success", ("int", np.array([-1])))[1]
    meta["success"] = {1: True, 0: False}.get(int(success[0]) if len(success) else -1)
    meta["operator_id"] = _text(record, "episode_metadata/operator_id")
    try:
        meta["metadata"] = json.loads(_text(record, "episode_metadata/metadata") or "{}")
    except json.JSONDecodeError:
        problems.append(Problem(ident, "episode_metadata/metadata", "is not valid JSON"))
    first = record.get("steps/is_first")
    if first is None or first[0] != "int" or len(first[1]) == 0:
        problems.append(Problem(ident, "is_first", "missing; every episode needs steps/is_first"))
        return RawEpisode(ident, {}, meta, problems)
    steps = len(first[1])
    columns: dict[str, np.ndarray] = {}
    for path, (kind, dtype, shape) in storage.items():
        key = f"steps/{path}"
        if key not in record:
            if path in _SCALARS or path == "is_terminal":
                continue
            problems.append(Problem(ident, path, f"missing {key!r}"))
            continue
        got_kind, values = record[key]
        if got_kind != kind:
            problems.append(Problem(ident, path, f"stored as {got_kind or 'an empty'} list, expected {kind}_list"))
            continue
        size = math.prod(shape)
        if kind == "byte":
            nbytes = size * dtype.itemsize
            bad = [i for i, v in enumerate(values) if len(v) != nbytes]
            if len(values) != steps or bad:
                at = bad[0] if bad else None
                problems.append(Problem(ident, path, f"expected {steps} entries of {nbytes} bytes", at))
                continue
            col = np.frombuffer(b"".join(values), dtype=dtype.newbyteorder("<")).astype(dtype)
        else:
            if len(values) != steps * size:
                problems.append(
                    Problem(ident, path, f"has {len(values)} values, expected {steps} steps × {size} = {steps * size}")
                )
                continue
            col = values
        columns[path] = col.reshape((steps, *shape))
    return RawEpisode(ident, columns, meta, problems)


def _infer(record: Mapping[str, tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """Flat features from the first episode record of a headerless file."""
    steps = len(record.get("steps/is_first", ("", []))[1])
    if steps == 0:
        raise InvalidInput("cannot infer features: the first record has no steps/is_first", field="path")
    out = {}
    for key, (kind, values) in record.items():
        path = key.removeprefix("steps/")
        if not key.startswith("steps/") or path in FLAGS or path in ("discount", "timestamp") or kind == "byte":
            continue
        out[feature_key(path)] = {
            "dtype": "float32" if kind == "float" else "int64", "shape": [len(values) // steps], "names": None
        }  # fmt: skip
    return check_features(out)


def import_rlds_tfrecord(path: Path, *, fps: int | None = None, strict: bool = False) -> RldsImport:
    """Import RLDS episodes from a TFRecord file, validating every record and episode.

    Args:
        path: the ``.tfrecord`` file.
        fps: the frame rate; required only when the file has no Flywheel header.
        strict: raise if any episode is invalid instead of reporting and skipping it.

    Returns:
        ``RldsImport(features, fps, episodes, report)``; ``episodes`` lazily yields the valid episodes.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: an unreadable header, unknown fps, or (strict) any invalid episode.

    Example:
        >>> features, fps, episodes, report = import_rlds_tfrecord(Path("/tmp/ep.tfrecord"))
        >>> report.ok, fps
        (True, 10)
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound("TFRecord file", path)
    first = next(_records(path), None)
    if first is None:
        raise InvalidInput(f"{path.name} is empty", field="path", allowed="a TFRecord file of RLDS episodes")
    _, payload, problem = first
    if payload is None:
        raise InvalidInput(f"{path.name}: the first record is unreadable ({problem})", field="path")
    try:
        record = _parse(payload)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise InvalidInput(f"{path.name}: the first record is not a tf.train.Example ({exc})", field="path") from exc
    has_header = HEADER_KEY in record
    if has_header:
        try:
            header = json.loads(record[HEADER_KEY][1][0])
        except (json.JSONDecodeError, IndexError, TypeError) as exc:
            raise InvalidInput(f"{path.name}: {HEADER_KEY} is not valid JSON", field=HEADER_KEY) from exc
        features = check_features(header.get("features"))
        rate = fps if fps is not None else header.get("fps")
    else:
        features, rate = _infer(record), fps
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise InvalidInput(f"must be a positive integer, got {rate!r}", field="fps",
                           hint="pass fps= for a TFRecord file without a Flywheel header")  # fmt: skip
    storage = _storage(features)

    def read() -> Iterator[RawEpisode]:
        for n, data, trouble in _records(path):
            if n == 0 and has_header:
                continue
            ident = f"record #{n}"
            if data is None:
                yield RawEpisode(ident, {}, {}, [Problem(ident, "record", f"{trouble}; reading stopped here")])
                return
            try:
                rec = _parse(data)
            except Exception:  # protobuf DecodeError
                yield RawEpisode(ident, {}, {}, [Problem(ident, "record", "not a tf.train.Example")])
                continue
            yield _raw_episode(n, rec, storage)

    return run_import(str(path), features, rate, read, strict=strict)
