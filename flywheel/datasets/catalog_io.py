"""Episodes in and out of the catalog: reading a source (folder, RLDS, TFRecord, rosbag2) and exporting.

The catalog (``catalog.py``) calls these; they know files and formats, not the database.

Example:
    >>> detect_format(Path("run1.tfrecord"))
    'tfrecord'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.export_manifest import ExportManifest, file_entry, manifest_path
from flywheel.datasets.format import (
    DEFAULT_FEATURES,
    EDIT_LOCK,
    INFO_PATH,
    OPTIONAL_COLUMNS,
    SIDECAR_PATH,
    WRITE_LOCK,
)
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.schemas import EXPORT_FORMATS, SOURCE_FORMATS
from flywheel.errors import FlywheelError, InvalidInput, NotFound

_SUFFIXES = {".jsonl": "rlds-jsonl", ".json": "rlds-jsonl", ".tfrecord": "tfrecord", ".mcap": "rosbag",
             ".db3": "rosbag"}


@dataclass
class Source:
    """Episodes read from somewhere, ready to be written into a dataset.

    Attributes:
        format: one of ``SOURCE_FORMATS``.
        features: the user features the episodes carry (default columns left out).
        fps: their frame rate.
        robot_type: what the source says, if anything.
        episodes: the valid episodes (lazy).
        report: one line per invalid episode or problem found (RLDS/TFRecord validation report).
        invalid: how many episodes were refused.
    """

    format: str
    features: dict[str, dict[str, Any]]
    fps: int
    episodes: Iterator[EpisodeArrays]
    robot_type: str = "unknown"
    report: list[str] = field(default_factory=list)
    invalid: int = 0


@contextlib.contextmanager
def reading(path: Path, fmt: str | None) -> Iterator[None]:
    """Turn a parser's own failure on a malformed file (not a Flywheel error) into InvalidInput naming the source.

    Example:
        >>> with reading(Path("x.jsonl"), "rlds-jsonl"):
        ...     raise UnicodeDecodeError("utf-8", b"\\xff", 0, 1, "bad")
        Traceback (most recent call last):
        flywheel.errors.InvalidInput: source: x.jsonl is not a readable rlds-jsonl source: ...
    """
    try:
        yield
    except FlywheelError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError, OSError, struct.error,
            RuntimeError) as exc:
        raise InvalidInput(f"{Path(path).name} is not a readable {fmt or 'dataset'} source: {exc}",
                           field="source", allowed=list(SOURCE_FORMATS)) from exc


def detect_format(path: Path) -> str:
    """The source format of a file or folder, from its layout or suffix.

    Raises:
        InvalidInput: nothing recognisable (field ``format``, the formats listed).
    """
    path = Path(path)
    if path.is_dir():
        if (path / SIDECAR_PATH).is_file():
            return "flywheel"
        if (path / INFO_PATH).is_file():
            return "lerobot"
        if (path / "metadata.yaml").is_file():
            return "rosbag"
    elif path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    raise InvalidInput(f"cannot tell the format of {path}; pass it explicitly", field="format",
                       allowed=list(SOURCE_FORMATS))


def parse_topic(spec: str) -> Any:
    """A ``--topic`` option, ``TOPIC:FEATURE[:FIELD[:DTYPE]]``, as a rosbag ``TopicMap``.

    Example:
        >>> parse_topic("/joint_states:observation.state:position").field
        'position'
    """
    from flywheel.datasets.rosbag import DTYPES, TopicMap

    parts = spec.split(":") if isinstance(spec, str) else []
    if not 2 <= len(parts) <= 4 or not parts[0] or not parts[1]:
        raise InvalidInput(f"{spec!r} is not TOPIC:FEATURE[:FIELD[:DTYPE]]", field="topic",
                           allowed="e.g. /joint_states:observation.state:position")
    dtype = parts[3] if len(parts) == 4 else "float32"
    if dtype not in DTYPES:
        raise InvalidInput(f"unknown dtype {dtype!r} in {spec!r}", field="topic", allowed=list(DTYPES))
    return TopicMap(parts[0], parts[1], parts[2] if len(parts) >= 3 else "", dtype)


def _user_columns(ep: EpisodeArrays, features: dict[str, dict[str, Any]]) -> EpisodeArrays:
    """Keep the feature columns and the optional reward/done columns a writer takes; a task is required."""
    cols = {k: v for k, v in ep.columns.items() if k in features or k in OPTIONAL_COLUMNS}
    if "next.reward" in cols:
        cols["next.reward"] = np.asarray(cols["next.reward"], np.float32).reshape(-1, 1)
    if "next.done" in cols:
        cols["next.done"] = np.asarray(cols["next.done"]).astype(bool).reshape(-1, 1)
    return EpisodeArrays(cols, task=ep.task or "unspecified", success=ep.success, metadata=dict(ep.metadata))


def _episodes(features: dict[str, dict[str, Any]], episodes: Iterator[EpisodeArrays]) -> Iterator[EpisodeArrays]:
    for ep in episodes:
        yield _user_columns(ep, features)


def open_source(path: Path, fmt: str | None = None, *, fps: int | None = None, topics: Sequence[str] = (),
                task: str = "", staging: Path | None = None) -> Source:
    """Read episodes from a Flywheel or LeRobot folder, an RLDS JSONL or TFRecord file, or a rosbag2.

    Args:
        path: the file or folder.
        fmt: one of ``SOURCE_FORMATS``; detected from the path when None.
        fps: the frame rate (RLDS files without a header; required for rosbags).
        topics: rosbag topic mappings ``TOPIC:FEATURE[:FIELD[:DTYPE]]``.
        task: the task of rosbag episodes.
        staging: an empty scratch folder (a LeRobot folder is converted there first).

    Raises:
        NotFound: the path does not exist.
        InvalidInput: an unknown format, or what the format's reader refuses (named).
    """
    path = Path(path)
    if not path.exists():
        raise NotFound("source", path, hint="give an existing file or folder")
    fmt = fmt or detect_format(path)
    if fmt not in SOURCE_FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}", field="format", allowed=list(SOURCE_FORMATS))
    if fmt in ("flywheel", "lerobot"):
        root = path
        if fmt == "lerobot":
            from flywheel.datasets.lerobot_io import import_lerobot

            if staging is None:
                raise InvalidInput("a LeRobot source needs a staging folder", field="staging")
            import_lerobot(path, staging)
            root = staging
        elif not (path / SIDECAR_PATH).is_file():
            raise InvalidInput(f"{path} is not a Flywheel dataset folder (no {SIDECAR_PATH})", field="format",
                               allowed=list(SOURCE_FORMATS))
        reader = DatasetReader(root)
        return Source(fmt, dict(reader.features), reader.fps, reader.iter_episodes(),
                      robot_type=str(reader.info.get("robot_type") or "unknown"))
    if fmt in ("rlds-jsonl", "tfrecord"):
        if fmt == "rlds-jsonl":
            from flywheel.datasets.rlds import import_rlds_jsonl as read
        else:
            from flywheel.datasets.tfrecord_io import import_rlds_tfrecord as read
        features, rate, episodes, report = read(path, fps=fps)
        feats = {k: v for k, v in features.items() if k not in DEFAULT_FEATURES}
        source = Source(fmt, feats, rate, _episodes(feats, episodes))
        source.report = report  # type: ignore[assignment]  # a ValidationReport until drained
        return source
    from flywheel.datasets.rosbag import import_rosbag

    if not topics:
        raise InvalidInput("map at least one topic to a feature", field="topic",
                           allowed="TOPIC:FEATURE[:FIELD[:DTYPE]], e.g. /joint_states:observation.state:position")
    if fps is None:
        raise InvalidInput("a rosbag import needs the dataset's frame rate", field="fps", allowed="a positive integer")
    features, rate, episodes = import_rosbag(path, [parse_topic(t) for t in topics], fps=fps, task=task)
    return Source(fmt, features, rate, _episodes(features, iter(episodes)))


def finish_report(source: Source) -> None:
    """Turn an RLDS/TFRecord validation report (complete once the episodes are drained) into lines."""
    report = source.report
    if isinstance(report, list):
        return
    source.invalid = report.episodes_total - report.episodes_valid  # type: ignore[attr-defined]
    source.report = report.summary().splitlines()  # type: ignore[attr-defined]


def check_same_features(dataset: dict[str, dict[str, Any]], source: dict[str, dict[str, Any]]) -> None:
    """Refuse episodes whose features differ from the dataset's, naming the first feature that differs.

    Raises:
        InvalidInput: field ``features.<key>``, with what the dataset has.
    """
    for key, spec in dataset.items():
        if key not in source:
            raise InvalidInput("is missing from the source's episodes", field=f"features.{key}",
                               allowed=sorted(source))
        theirs = source[key]
        if theirs.get("dtype") != spec["dtype"] or list(theirs.get("shape") or []) != list(spec["shape"]):
            raise InvalidInput(
                f"the source has {theirs.get('dtype')} {list(theirs.get('shape') or [])}, the dataset "
                f"{spec['dtype']} {spec['shape']}", field=f"features.{key}", allowed=f"{spec['dtype']} {spec['shape']}")
    for key in source:
        if key not in dataset:
            raise InvalidInput("is not a feature of the dataset", field=f"features.{key}", allowed=sorted(dataset))


def copy_folder(source: Path, target: Path) -> None:
    """Copy a Flywheel dataset folder (without its lock files) to a new folder, renamed into place when complete."""
    staging = target.with_name(f".{target.name}.copy-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(WRITE_LOCK, EDIT_LOCK))
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def default_export_path(base: Path, name: str, fmt: str) -> Path:
    """Where an export goes when no path is given: ``<base>/<name>-<format>-<UTC time>[.suffix]``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    suffix = {"lerobot": "", "rlds-jsonl": ".jsonl", "tfrecord": ".tfrecord"}[fmt]
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return base / f"{safe}-{fmt}-{stamp}{suffix}"


def export_folder(root: Path, out: Path, fmt: str, *, origin: str) -> tuple[int, int, ExportManifest]:
    """Export a dataset folder (trims and soft deletes applied) and write the manifest next to it.

    Returns:
        (episodes, frames, manifest).

    Raises:
        InvalidInput: an unknown format (the allowed ones listed).
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}", field="format", allowed=list(EXPORT_FORMATS))
    out = Path(out)
    reader = DatasetReader(root)
    if fmt == "lerobot":
        from flywheel.datasets.lerobot_io import export_lerobot

        summary = export_lerobot(root, out)
        files = []
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            entry = file_entry(path)
            entry["path"] = path.relative_to(out).as_posix()
            files.append(entry)
        manifest = ExportManifest(format="lerobot-v2.1", origin=origin, fps=reader.fps, episodes=summary.episodes,
                                  steps=summary.frames, files=files, operators=[], features=reader.features)
        manifest.write(manifest_path(out))
        return summary.episodes, summary.frames, manifest
    if fmt == "rlds-jsonl":
        from flywheel.datasets.rlds import export_rlds_jsonl as write
    else:
        from flywheel.datasets.tfrecord_io import export_rlds_tfrecord as write
    manifest = write(reader.iter_episodes(), reader.features, reader.fps, out, origin=origin)
    return manifest.episodes, manifest.steps, manifest
