"""Plain LeRobot v2.1 folders in and out.

Export (``export_lerobot``) writes a Flywheel dataset as a plain LeRobot v2.1 folder with the edits
applied: soft-deleted episodes are left out, trims are cut, and episodes, frames and tasks are renumbered
from 0 (``episode_index``, ``index``, ``frame_index``, ``timestamp``, ``task_index``). ``next.done`` is true
on the last frame of every exported episode. The folder has LeRobot's layout and nothing of Flywheel's
(no sidecar log, no lock files). Camera streams are decoded and re-encoded (H.264 yuv444p at crf 0, each
pixel within ``video.LOSSLESS_TOLERANCE`` of the source).

Import (``import_lerobot``) reads a LeRobot v2.0/v2.1 folder (``meta/info.json`` with ``data_path`` and
``video_path`` templates, ``meta/episodes.jsonl``, ``meta/tasks.jsonl``) into a new Flywheel dataset.
Numeric features of shape ``[n]`` and ``video`` features are supported; camera frames are matched to
data frames by timestamp (``round(timestamp * fps)``), so any codec FFmpeg decodes (AV1, H.264) works.

Both write into a temporary folder next to the target and rename it into place when complete, so a
crash never leaves a half-written dataset under the target name.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.format import (
    CHUNKS_SIZE,
    EDIT_LOCK,
    INFO_PATH,
    SIDECAR_PATH,
    WRITE_LOCK,
)
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.video import decode_video
from flywheel.datasets.writer import create_dataset
from flywheel.durable import fsync_dir
from flywheel.errors import Conflict, IntegrityError, InvalidInput, NotFound

#: Codebase versions ``import_lerobot`` reads (same episode-file layout).
IMPORT_VERSIONS = ("v2.0", "v2.1")
#: Columns LeRobot adds to every frame; computed again by the Flywheel writer.
LEROBOT_DEFAULTS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
#: Optional columns the Flywheel writer takes per episode.
OPTIONAL = ("next.reward", "next.done")


@dataclass
class LerobotTransfer:
    """What an export or import did.

    Attributes:
        root: the folder written.
        episodes: episodes written.
        frames: frames written.
        index_map: source episode index -> written episode index.
        skipped: source episode index -> why it was left out.
    """

    root: Path
    episodes: int = 0
    frames: int = 0
    index_map: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)


def _staging(target: Path) -> Path:
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} exists and is not empty", hint="choose a new folder or remove it")
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _publish(staging: Path, target: Path) -> None:
    """Rename the finished staging folder onto the target (an empty target folder is replaced)."""
    if target.is_dir():
        target.rmdir()
    os.replace(staging, target)
    fsync_dir(target.parent)


def export_lerobot(source: Path, out: Path, *, robot_type: str | None = None) -> LerobotTransfer:
    """Export a Flywheel dataset as a plain LeRobot v2.1 folder, trims and soft deletes applied.

    Args:
        source: the Flywheel dataset folder.
        out: the folder to create (must not exist, or be empty).
        robot_type: overrides the source's robot type.

    Returns:
        The transfer summary; ``index_map`` maps kept source episodes to their new indexes.

    Raises:
        NotFound: ``source`` holds no dataset.
        Conflict: ``out`` exists and is not empty.
        DatasetCorruptError: a source episode file is damaged (nothing is published).

    Example:
        >>> export_lerobot(Path("my_dataset"), Path("exports/my_dataset_lerobot")).episodes  # doctest: +SKIP
        41
    """
    reader = DatasetReader(Path(source))
    out = Path(out)
    staging = _staging(out)
    summary = LerobotTransfer(root=out)
    try:
        writer = create_dataset(
            staging,
            features=reader.features,
            fps=reader.fps,
            robot_type=robot_type or str(reader.info.get("robot_type") or "unknown"),
        )
        with writer:
            for rec in reader.records:
                if rec.soft_deleted:
                    summary.skipped[rec.episode_index] = "soft-deleted"
                    continue
                if rec.length <= 0:
                    summary.skipped[rec.episode_index] = "trimmed to no frames"
                    continue
                ep = reader.read_episode(rec.episode_index, apply_trim=True)
                columns = dict(ep.columns)
                done = np.array(columns["next.done"], dtype=bool, copy=True).reshape(-1, 1)
                done[-1] = True
                columns["next.done"] = done
                writer.append_episode(EpisodeArrays(columns, task=ep.task, success=ep.success), source="export")
                summary.index_map[rec.episode_index] = summary.episodes
                summary.episodes += 1
                summary.frames += len(done)
        for rel in (SIDECAR_PATH, WRITE_LOCK, EDIT_LOCK):
            (staging / rel).unlink(missing_ok=True)
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


# --------------------------------------------------------------------------- import


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise IntegrityError(f"{path} is missing")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"{path} line {number} is not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise IntegrityError(f"{path} line {number} is not a JSON object")
        rows.append(row)
    return rows


def _load_lerobot_info(root: Path) -> dict[str, Any]:
    path = root / INFO_PATH
    if not path.is_file():
        raise NotFound("LeRobot dataset", root, hint=f"expected {INFO_PATH} inside it")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from exc
    version = info.get("codebase_version")
    if version not in IMPORT_VERSIONS:
        raise InvalidInput(
            f"cannot import a LeRobot dataset of version {version!r}",
            field="codebase_version",
            allowed=list(IMPORT_VERSIONS),
        )
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise IntegrityError(f"{path} lacks {key!r}")
    return info


def _import_features(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, spec in info["features"].items():
        if key in LEROBOT_DEFAULTS or key in OPTIONAL:
            continue
        dtype = spec.get("dtype")
        if dtype == "image" or dtype not in (
            "video",
            "float32",
            "float64",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint8",
            "bool",
        ):
            raise InvalidInput(
                f"feature {key!r} has dtype {dtype!r}, which Flywheel cannot import",
                field=f"features.{key}.dtype",
                allowed="numeric dtypes or video",
            )
        shape = list(spec.get("shape") or [])
        if dtype != "video" and len(shape) != 1:
            raise InvalidInput(
                f"feature {key!r} has shape {shape}; only rank-1 numeric features are imported",
                field=f"features.{key}.shape",
                allowed="[n]",
            )
        entry = {"dtype": dtype, "shape": shape, "names": spec.get("names")}
        out[key] = entry
    return out


def _column(table: pa.Table, key: str, spec: dict[str, Any], path: Path) -> np.ndarray:
    if key not in table.column_names:
        raise IntegrityError(f"{path} lacks the column {key!r}")
    arr = table.column(key).combine_chunks()
    n = spec["shape"][0]
    flat = arr.flatten() if isinstance(arr.type, pa.ListType | pa.FixedSizeListType | pa.LargeListType) else arr
    values = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.dtype(spec["dtype"]))
    if values.size != len(arr) * n:
        raise IntegrityError(f"{path} column {key!r} does not have {n} values per frame")
    return values.reshape(len(arr), n)


def _frames_for(path: Path, timestamps: np.ndarray, fps: int, key: str) -> np.ndarray:
    try:
        frames = decode_video(path)
    except NotFound:
        raise IntegrityError(f"{path} is missing (camera {key!r})") from None
    if len(frames) == len(timestamps):
        return frames
    idx = np.rint(timestamps * fps).astype(np.int64)
    if idx.min() < 0 or idx.max() >= len(frames):
        raise IntegrityError(f"{path} has {len(frames)} frames; the data needs frame {int(idx.max())}")
    return frames[idx]


def import_lerobot(source: Path, dest: Path, *, robot_type: str | None = None) -> LerobotTransfer:
    """Import a plain LeRobot v2.0/v2.1 folder as a new Flywheel dataset.

    Args:
        source: the LeRobot folder (``meta/info.json``, ``data/``, ``videos/``).
        dest: the Flywheel dataset folder to create (must not exist, or be empty).
        robot_type: overrides the source's robot type.

    Returns:
        The transfer summary; ``index_map`` maps LeRobot episode indexes to Flywheel ones.

    Raises:
        NotFound: ``source`` has no ``meta/info.json``.
        InvalidInput: another codebase version, or a feature Flywheel cannot hold (images, rank > 1).
        IntegrityError: a missing or damaged episode file, named; nothing is published.
        Conflict: ``dest`` exists and is not empty.

    Example:
        >>> import_lerobot(Path("lerobot/pusht"), Path("datasets/pusht")).frames  # doctest: +SKIP
        25650
    """
    source, dest = Path(source), Path(dest)
    info = _load_lerobot_info(source)
    features = _import_features(info)
    fps = int(info["fps"])
    tasks = {int(r["task_index"]): str(r["task"]) for r in _jsonl(source / "meta" / "tasks.jsonl")}
    episodes = sorted(_jsonl(source / "meta" / "episodes.jsonl"), key=lambda r: int(r["episode_index"]))
    chunks_size = int(info.get("chunks_size") or CHUNKS_SIZE)
    video_keys = [k for k, v in features.items() if v["dtype"] == "video"]
    staging = _staging(dest)
    summary = LerobotTransfer(root=dest)
    try:
        writer = create_dataset(
            staging, features=features, fps=fps, robot_type=robot_type or str(info.get("robot_type") or "unknown")
        )
        with writer:
            for row in episodes:
                index = int(row["episode_index"])
                fmt = {"episode_chunk": index // chunks_size, "episode_index": index}
                path = source / info["data_path"].format(**fmt)
                try:
                    table = pq.read_table(path)
                except (OSError, pa.ArrowException) as exc:
                    raise IntegrityError(f"episode {index}: {path} is missing or unreadable: {exc}") from exc
                columns = {k: _column(table, k, v, path) for k, v in features.items() if v["dtype"] != "video"}
                for key, dtype in (("next.reward", "float32"), ("next.done", "bool")):
                    if key in table.column_names:
                        columns[key] = _column(table, key, {"dtype": dtype, "shape": [1]}, path)
                timestamps = (
                    table.column("timestamp").to_numpy().astype(np.float64)
                    if "timestamp" in table.column_names
                    else np.arange(table.num_rows) / fps
                )
                for key in video_keys:
                    vpath = source / info["video_path"].format(video_key=key, **fmt)
                    columns[key] = _frames_for(vpath, timestamps, fps, key)
                if "task_index" in table.column_names and table.num_rows:
                    task = tasks.get(int(table.column("task_index")[0].as_py()), "")
                else:
                    task = (row.get("tasks") or [""])[0]
                meta = {"lerobot_episode_index": index}
                ep = EpisodeArrays(columns, task=task or "unspecified", success=None, metadata=meta)
                try:
                    record = writer.append_episode(ep, source="import:lerobot")
                except InvalidInput as exc:
                    raise InvalidInput(f"episode {index}: {exc.message}", field=exc.field, allowed=exc.allowed) from exc
                summary.index_map[index] = record.episode_index
                summary.episodes += 1
                summary.frames += record.total_frames
        _publish(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
