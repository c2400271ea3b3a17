"""RLDS episodes as JSON Lines: export with a manifest, import with a validation report.

The RLDS step layout (shared with ``tfrecord_io``) maps Flywheel feature keys to step fields:

=====================  ==========================  ===========================================
feature key            RLDS step field              notes
=====================  ==========================  ===========================================
``observation.<k>``    ``observation/<k>``          one entry per observation feature
``action``             ``action``                   required
``next.reward``        ``reward``                   0.0 when the dataset has no reward
(none)                 ``discount``                 always 1.0
(none)                 ``is_first`` / ``is_last``   True on the first / last step only
(none)                 ``is_terminal``              True on the last step of a successful episode
``timestamp``          ``timestamp``                seconds; ``index / fps`` when not a feature
any other key          ``extras/<key>``
=====================  ==========================  ===========================================

Episode metadata: ``episode_id``, ``task``, ``success`` (true, false or null), ``operator_id``
(anonymised) and ``metadata`` (the rest of ``EpisodeArrays.metadata``).

File layout (``.jsonl``): the first line is ``{"rlds_header": {"format": "flywheel-rlds", "version": 1,
"fps": ..., "features": {...}, "origin": ...}}``; every further line is one episode
``{"episode_metadata": {...}, "steps": [{"observation": {...}, "action": [...], "reward": 0.0, ...}]}``.
A ``.json`` file holds ``{"rlds_header": ..., "episodes": [...]}`` or a bare list of episodes. Files
without a header are accepted: features are inferred from the first step (floats → float32, integers →
int64, booleans → bool) and fps from the timestamps, unless given.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from flywheel.datasets.episode import EpisodeArrays
from flywheel.errors import InvalidInput, NotFound

FORMAT_NAME = "flywheel-rlds"
FORMAT_VERSION = 1
#: Feature dtypes an RLDS export can carry, and the numpy dtype of their arrays.
DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "int64": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
    "video": np.dtype(np.uint8),
    "image": np.dtype(np.uint8),
}
#: LeRobot bookkeeping columns: exported when present in the episode, dropped silently when not.
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
FLAGS = ("is_first", "is_last", "is_terminal")


# --------------------------------------------------------------------------- features and step fields


def step_field(key: str) -> str:
    """The RLDS step field (slash path) of a feature key.

    Example:
        >>> step_field("observation.state"), step_field("next.reward"), step_field("next.done")
        ('observation/state', 'reward', 'extras/next.done')
    """
    if key.startswith("observation."):
        return "observation/" + key.removeprefix("observation.")
    return {"action": "action", "next.reward": "reward", "timestamp": "timestamp"}.get(key, "extras/" + key)


def feature_key(path: str) -> str:
    """The feature key of an RLDS step field; the inverse of ``step_field``.

    Example:
        >>> feature_key("observation/state"), feature_key("reward")
        ('observation.state', 'next.reward')
    """
    if path.startswith("observation/"):
        return "observation." + path.removeprefix("observation/")
    if path.startswith("extras/"):
        return path.removeprefix("extras/")
    return {"reward": "next.reward"}.get(path, path)


def check_features(features: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate LeRobot-style features for RLDS and return them normalised (shape as a list of ints).

    Raises:
        InvalidInput: not a mapping, a missing ``action``, an unsupported dtype or a bad shape.

    Example:
        >>> check_features({"action": {"dtype": "float32", "shape": (2,)}})["action"]["shape"]
        [2]
    """
    if not isinstance(features, Mapping) or not features:
        raise InvalidInput("must be a non-empty mapping of feature key -> {dtype, shape, names}", field="features")
    out: dict[str, dict[str, Any]] = {}
    for key, spec in features.items():
        where = f"features.{key}"
        if not isinstance(spec, Mapping):
            raise InvalidInput(f"must be a mapping with dtype and shape, got {type(spec).__name__}", field=where)
        dtype = spec.get("dtype")
        if dtype not in DTYPES:
            raise InvalidInput(f"unsupported dtype {dtype!r}", field=f"{where}.dtype", allowed=sorted(DTYPES))
        shape = spec.get("shape")
        if not isinstance(shape, list | tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise InvalidInput(f"must be a list of non-negative integers, got {shape!r}", field=f"{where}.shape")
        if dtype in ("video", "image") and (len(shape) != 3 or shape[2] != 3):
            raise InvalidInput(f"camera features need shape [H, W, 3], got {list(shape)}", field=f"{where}.shape")
        out[key] = {**spec, "dtype": dtype, "shape": [int(n) for n in shape], "names": spec.get("names")}
    if "action" not in out:
        raise InvalidInput("RLDS steps need an 'action' feature", field="features", allowed="a key named 'action'")
    return out


def check_episode(episode: EpisodeArrays, features: Mapping[str, Mapping[str, Any]], position: int) -> int:
    """Check one episode against the features before export; return its number of steps.

    Raises:
        InvalidInput: a missing column, a wrong shape or dtype, a non-finite value, or ragged lengths.
    """
    where = f"episode #{position}"
    if not isinstance(episode, EpisodeArrays):
        raise InvalidInput(f"must be an EpisodeArrays, got {type(episode).__name__}", field=where)
    lengths = {len(episode.columns[k]) for k in features if k in episode.columns}
    if len(lengths) > 1:
        raise InvalidInput(f"columns have different lengths {sorted(lengths)}", field=where)
    steps = lengths.pop() if lengths else 0
    if steps == 0:
        raise InvalidInput("has no steps", field=where)
    for key, spec in features.items():
        if key not in episode.columns:
            raise InvalidInput(f"misses the column {key!r}", field=where, allowed=sorted(episode.columns))
        col = np.asarray(episode.columns[key])
        if col.shape[1:] != tuple(spec["shape"]):
            raise InvalidInput(
                f"has shape {list(col.shape[1:])} per step, the feature says {spec['shape']}", field=f"{where}.{key}"
            )
        if not _dtype_fits(col.dtype, spec["dtype"]):
            raise InvalidInput(f"has dtype {col.dtype}, the feature says {spec['dtype']}", field=f"{where}.{key}")
        if col.dtype.kind == "f" and not np.isfinite(col).all():
            raise InvalidInput("contains non-finite values (nan or inf)", field=f"{where}.{key}")
    return steps


def _dtype_fits(actual: np.dtype, dtype: str) -> bool:
    target = DTYPES[dtype]
    if target.kind == "f":
        return actual.kind in "fiu"
    if target.kind in "iu":
        return actual.kind in "iu" and (dtype not in ("video", "image", "uint8") or actual == np.uint8)
    return actual.kind == "b"


def episode_steps(episode: EpisodeArrays, features: Mapping[str, Mapping[str, Any]], fps: int) -> dict[str, np.ndarray]:
    """The RLDS step fields of one (checked) episode as column arrays of length T."""
    out = {step_field(k): np.asarray(episode.columns[k], dtype=DTYPES[s["dtype"]]) for k, s in features.items()}
    steps = len(out["action"])
    if "reward" not in out:
        out["reward"] = np.zeros(steps, np.float32)
    if "timestamp" not in out:
        out["timestamp"] = np.arange(steps, dtype=np.float64) / fps
    out["discount"] = np.ones(steps, np.float32)
    flags = {name: np.zeros(steps, np.bool_) for name in FLAGS}
    flags["is_first"][0] = flags["is_last"][-1] = True
    flags["is_terminal"][-1] = episode.success is True
    out.update(flags)
    return out


# --------------------------------------------------------------------------- validation report


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an imported episode."""

    episode: str
    field: str
    message: str
    step: int | None = None

    def __str__(self) -> str:
        at = f", step {self.step}" if self.step is not None else ""
        return f"episode {self.episode}{at}, {self.field}: {self.message}"


@dataclass
class ValidationReport:
    """What an import found: counts, and every problem with the episode and field named.

    Invalid episodes are listed here and not yielded by the import.

    Example:
        >>> report = ValidationReport(source="x.jsonl")
        >>> report.ok
        True
    """

    source: str
    episodes_total: int = 0
    episodes_valid: int = 0
    steps_valid: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every episode is valid."""
        return not self.problems

    @property
    def invalid_episodes(self) -> list[str]:
        """The ids of the invalid episodes, in file order."""
        return list(dict.fromkeys(p.episode for p in self.problems))

    def summary(self) -> str:
        """A few lines a user can read."""
        head = f"{self.source}: {self.episodes_valid}/{self.episodes_total} episodes valid, {self.steps_valid} steps"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {**asdict(self), "ok": self.ok, "invalid_episodes": self.invalid_episodes}


class RldsImport(NamedTuple):
    """The result of an RLDS import: features, fps, the valid episodes (lazy) and the report."""

    features: dict[str, dict[str, Any]]
    fps: int
    episodes: Iterator[EpisodeArrays]
    report: ValidationReport


class RawEpisode(NamedTuple):
    """An episode as read from a file, before validation: step fields as arrays or problems."""

    ident: str
    columns: dict[str, np.ndarray]
    metadata: dict[str, Any]
    problems: list[Problem]


def finish_episode(
    raw: RawEpisode, features: Mapping[str, Mapping[str, Any]]
) -> tuple[EpisodeArrays | None, list[Problem]]:
    """Check flags, timestamps, finiteness and metadata of a raw episode and build its EpisodeArrays.

    Returns:
        The episode (None when invalid) and the problems found (including those already in ``raw``).
    """
    problems = list(raw.problems)
    cols = raw.columns
    lengths = {len(v) for v in cols.values()}
    steps = max(lengths) if lengths else 0

    def bad(fld: str, message: str, step: int | None = None) -> None:
        problems.append(Problem(raw.ident, fld, message, step))

    if steps == 0:
        bad("steps", "the episode has no steps")
    elif len(lengths) > 1:
        bad("steps", f"step fields have different lengths {sorted(lengths)}")
    for path, col in cols.items():
        if col.dtype.kind == "f" and col.size and not np.isfinite(col).all():
            step = int(np.argwhere(~np.isfinite(col.reshape(len(col), -1)).all(axis=1))[0, 0])
            bad(path, "non-finite value (nan or inf)", step)
    if steps and len(lengths) == 1:
        for name in FLAGS:
            if name not in cols:
                continue
            flag = cols[name].astype(bool)
            expected = np.zeros(steps, bool)
            if name == "is_first":
                expected[0] = True
            elif name == "is_last":
                expected[-1] = True
            else:
                expected[-1] = flag[-1]
            wrong = np.flatnonzero(flag != expected)
            if wrong.size:
                where = {"is_first": "the first step only", "is_last": "the last step only"}
                rule = where.get(name, "the last step at most")
                bad(name, f"must be true on {rule}; wrong at steps {wrong[:5].tolist()}", int(wrong[0]))
        ts = cols.get("timestamp")
        if ts is not None and ts.size and np.isfinite(ts).all():
            flat = ts.reshape(len(ts), -1)[:, 0]
            back = np.flatnonzero(np.diff(flat) <= 0)
            if back.size:
                bad("timestamp", "timestamps must increase from step to step", int(back[0]) + 1)
    success = raw.metadata.get("success")
    if success is not None and not isinstance(success, bool):
        bad("episode_metadata.success", f"must be true, false or null, got {success!r}")
    task = raw.metadata.get("task", "")
    if not isinstance(task, str):
        bad("episode_metadata.task", f"must be a string, got {type(task).__name__}")
    if problems:
        return None, problems
    columns = {}
    for key, spec in features.items():
        col = cols[step_field(key)]
        columns[key] = col.reshape((steps, *spec["shape"])).astype(DTYPES[spec["dtype"]], copy=False)
    meta = dict(raw.metadata.get("metadata") or {})
    meta.setdefault("episode_id", raw.ident)
    if raw.metadata.get("operator_id") is not None:
        meta["operator_id"] = raw.metadata["operator_id"]
    return EpisodeArrays(columns, task=task, success=success, metadata=meta), problems


def run_import(
    source: str,
    features: dict[str, dict[str, Any]],
    fps: int,
    read: Callable[[], Iterator[RawEpisode]],
    *,
    strict: bool,
) -> RldsImport:
    """Validate every episode (pass 1), then return a lazy iterator over the valid ones (pass 2)."""
    report = ValidationReport(source=source)
    invalid: set[int] = set()
    for n, raw in enumerate(read()):
        report.episodes_total += 1
        episode, problems = finish_episode(raw, features)
        if episode is None:
            invalid.add(n)
            report.problems.extend(problems)
        else:
            report.episodes_valid += 1
            report.steps_valid += episode.num_frames
    if strict and not report.ok:
        raise InvalidInput(report.summary(), field="episodes", hint="fix the file or import with strict=False")

    def episodes() -> Iterator[EpisodeArrays]:
        for n, raw in enumerate(read()):
            if n not in invalid:
                episode, _ = finish_episode(raw, features)
                if episode is not None:
                    yield episode

    return RldsImport(features, fps, episodes(), report)


# --------------------------------------------------------------------------- export manifest


def anonymiser(salt: str | bytes | None = None) -> Callable[[str], str]:
    """A function mapping operator ids to salted-hash pseudonyms, stable for one salt.

    With no salt a random one is drawn and forgotten, so pseudonyms cannot be linked across exports.

    Example:
        >>> anon = anonymiser("s3cret")
        >>> anon("alice") == anon("alice") != anon("bob")
        True
    """
    key = salt.encode() if isinstance(salt, str) else salt if salt is not None else secrets.token_bytes(16)
    return lambda ident: "op-" + hashlib.sha256(key + b"\0" + str(ident).encode()).hexdigest()[:16]


@dataclass
class ExportManifest:
    """What an export wrote: origin, counts, file hashes and anonymised operators. Saved next to the export."""

    format: str
    origin: str
    fps: int
    episodes: int
    steps: int
    files: list[dict[str, Any]]
    operators: list[str]
    features: dict[str, Any]
    anonymisation: str = "op- + sha256(salt, operator id)[:16]; the salt is not stored"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write the manifest as JSON, crash-safe."""
        write_atomic(Path(path), (json.dumps(self.to_dict(), indent=2) + "\n").encode())


def manifest_path(out_path: Path) -> Path:
    """Where the manifest of an export lives: ``<out_path>.manifest.json``.

    Example:
        >>> manifest_path(Path("/tmp/x.jsonl")).name
        'x.jsonl.manifest.json'
    """
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".manifest.json")


def file_entry(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of one exported file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": Path(path).name, "bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def fsync_replace(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it onto ``path``, fsync the folder."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` crash-safe (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        fsync_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ExportPlan(NamedTuple):
    """Checked export inputs: the features and the operator pseudonym function."""

    features: dict[str, dict[str, Any]]
    pseudonym: Callable[[str], str]


def plan_export(features: Mapping[str, Any], fps: int, origin: str, salt: str | bytes | None) -> ExportPlan:
    """Validate the common export arguments."""
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise InvalidInput(f"must be a positive integer, got {fps!r}", field="fps")
    if not isinstance(origin, str) or not origin.strip():
        raise InvalidInput("must be a non-empty tag naming where the data comes from", field="origin")
    return ExportPlan(check_features(features), anonymiser(salt))


def export_features(plan: ExportPlan, first: EpisodeArrays) -> dict[str, dict[str, Any]]:
    """The features actually exported.

    Bookkeeping columns the episodes do not carry are dropped; a ``next.reward`` column the episodes carry
    (as Flywheel's reader returns it) becomes the RLDS reward even when the features do not list it.
    """
    out = {k: v for k, v in plan.features.items() if k not in BOOKKEEPING or k in first.columns}
    if "next.reward" not in out and "next.reward" in first.columns:
        out["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    return out


def header_of(features: Mapping[str, Any], fps: int, origin: str) -> dict[str, Any]:
    """The header written at the start of an export: format, version, fps, features, origin."""
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "fps": fps, "features": dict(features), "origin": origin}


def episode_metadata(episode: EpisodeArrays, position: int, operator: str | None, plan: ExportPlan) -> dict[str, Any]:
    """The RLDS episode metadata of one episode, with the operator id replaced by its pseudonym."""
    meta = {k: v for k, v in episode.metadata.items() if k not in ("operator_id", "episode_id")}
    return {
        "episode_id": str(episode.metadata.get("episode_id", f"episode_{position:06d}")),
        "task": episode.task,
        "success": episode.success,
        "operator_id": plan.pseudonym(operator) if operator is not None else None,
        "metadata": meta,
    }


def operator_of(episode: EpisodeArrays, position: int, operator_ids: Mapping[int, str] | None) -> str | None:
    """The operator of an episode: ``operator_ids[position]`` if given, else ``metadata['operator_id']``."""
    if operator_ids is not None and position in operator_ids:
        return str(operator_ids[position])
    value = episode.metadata.get("operator_id")
    return None if value is None else str(value)


# --------------------------------------------------------------------------- JSON Lines


def _to_json(value: np.ndarray) -> Any:
    return value.tolist()


def _step_dict(cols: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    step: dict[str, Any] = {}
    for path, col in cols.items():
        value = col[i]
        if path in ("reward", "discount", "timestamp") and value.size == 1:
            value = value.reshape(())
        node = step
        *parents, leaf = path.split("/", 1) if path.startswith(("observation/", "extras/")) else [path]
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _to_json(value)
    return step


def export_rlds_jsonl(
    episodes: Iterable[EpisodeArrays],
    features: Mapping[str, Any],
    fps: int,
    out_path: Path,
    *,
    origin: str,
    operator_ids: Mapping[int, str] | None = None,
    salt: str | bytes | None = None,
) -> ExportManifest:
    """Export episodes as RLDS JSON Lines (header line + one line per episode) and write the manifest.

    Args:
        episodes: the episodes, each with one column per feature (bookkeeping columns such as
            ``frame_index`` may be absent).
        features: LeRobot-style features; must contain ``action``.
        fps: frames per second of the dataset.
        out_path: the ``.jsonl`` file to write (crash-safe); the manifest goes to ``<out_path>.manifest.json``.
        origin: a tag naming where the data comes from (dataset name, robot, site).
        operator_ids: episode position -> operator id, overriding ``metadata["operator_id"]``.
        salt: the salt of the operator pseudonyms; random (and not stored) by default.

    Returns:
        The manifest (also written as JSON).

    Raises:
        InvalidInput: bad features, fps or origin, or an episode that does not match the features; nothing
            is written then.

    Example:
        >>> ep = EpisodeArrays({"action": np.zeros((3, 2), np.float32)}, task="wave", success=True)
        >>> m = export_rlds_jsonl([ep], {"action": {"dtype": "float32", "shape": [2]}}, 10,
        ...                       Path("/tmp/ep.jsonl"), origin="lab-a")
        >>> (m.episodes, m.steps)
        (1, 3)
    """
    plan = plan_export(features, fps, origin, salt)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    n_episodes = n_steps = 0
    operators: dict[str, None] = {}
    feats: dict[str, dict[str, Any]] | None = None
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for position, episode in enumerate(episodes):
                if feats is None:
                    feats = export_features(plan, episode) if isinstance(episode, EpisodeArrays) else plan.features
                    fh.write(json.dumps({"rlds_header": header_of(feats, fps, origin)}) + "\n")
                n_steps += check_episode(episode, feats, position)
                operator = operator_of(episode, position, operator_ids)
                meta = episode_metadata(episode, position, operator, plan)
                if meta["operator_id"]:
                    operators[meta["operator_id"]] = None
                cols = episode_steps(episode, feats, fps)
                steps = [_step_dict(cols, i) for i in range(len(cols["is_first"]))]
                fh.write(json.dumps({"episode_metadata": meta, "steps": steps}, allow_nan=False) + "\n")
                n_episodes += 1
            if feats is None:
                feats = plan.features
                fh.write(json.dumps({"rlds_header": header_of(feats, fps, origin)}) + "\n")
        fsync_replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    manifest = ExportManifest(
        format="rlds-jsonl",
        origin=origin,
        fps=fps,
        episodes=n_episodes,
        steps=n_steps,
        files=[file_entry(out_path)],
        operators=list(operators),
        features=feats,
    )
    manifest.write(manifest_path(out_path))
    return manifest


def _read_json_episodes(path: Path) -> tuple[dict[str, Any] | None, Iterator[tuple[int, Any]]]:
    """The header (if any) and an iterator of (line number or position, episode object) of a file."""
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path.name} is not valid JSON: {exc}", field="path") from exc
        if isinstance(doc, list):
            return None, iter(enumerate(doc, 1))
        if isinstance(doc, dict) and isinstance(doc.get("episodes"), list):
            return _header_of(doc.get("rlds_header"), path), iter(enumerate(doc["episodes"], 1))
        raise InvalidInput(
            f"{path.name} must hold a list of episodes or an object with 'episodes'",
            field="path",
            allowed=["[episode, ...]", '{"rlds_header": ..., "episodes": [...]}'],
        )

    def lines() -> Iterator[tuple[int, Any]]:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(
                        f"{path.name} line {number} is not valid JSON: {exc.msg}",
                        field="path",
                        allowed="one JSON object per line",
                    ) from exc
                if not isinstance(obj, dict):
                    raise InvalidInput(
                        f"{path.name} line {number} is a JSON {type(obj).__name__}, not an object",
                        field="path",
                        allowed="one JSON object per line",
                    )
                yield number, obj

    it = lines()
    first = next(it, None)
    if first is None:
        return None, iter(())
    if "rlds_header" in first[1]:
        return _header_of(first[1]["rlds_header"], path), it
    return None, itertools.chain([first], it)


def _header_of(header: Any, path: Path) -> dict[str, Any] | None:
    if header is None:
        return None
    if not isinstance(header, dict) or "features" not in header:
        raise InvalidInput(f"{path.name}: rlds_header must be an object with features and fps", field="rlds_header")
    return header


def _infer_features(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Features from the first step of an episode object (headerless files)."""
    steps = obj.get("steps")
    if not isinstance(steps, list) or not steps or not isinstance(steps[0], dict):
        raise InvalidInput("cannot infer features: the first episode has no steps", field="steps")
    step = steps[0]
    flat: dict[str, Any] = {}
    for name, value in (step.get("observation") or {}).items():
        flat[f"observation.{name}"] = value
    for name, value in (step.get("extras") or {}).items():
        flat[name] = value
    if "action" in step:
        flat["action"] = step["action"]
    if "reward" in step:
        flat["next.reward"] = step["reward"]
    out = {}
    for key, value in flat.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise InvalidInput(
                f"cannot infer a dtype from {type(value).__name__} values",
                field=key,
                allowed="numbers, booleans or nested lists of them",
            )
        dtype = {"b": "bool", "f": "float32"}.get(arr.dtype.kind, "int64")
        shape = list(arr.shape) or [1]
        out[key] = {"dtype": dtype, "shape": shape, "names": None}
    return check_features(out)


def _jsonl_raw(number: int, obj: Mapping[str, Any], features: Mapping[str, Mapping[str, Any]]) -> RawEpisode:
    """Pull the step fields of one JSON episode into arrays, noting missing keys and ragged shapes."""
    meta = obj.get("episode_metadata") or {}
    ident = str(meta.get("episode_id", f"#{number}")) if isinstance(meta, dict) else f"#{number}"
    problems: list[Problem] = []
    if not isinstance(meta, dict):
        problems.append(Problem(ident, "episode_metadata", "must be an object"))
        meta = {}
    steps = obj.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append(Problem(ident, "steps", "missing or empty; expected a non-empty list of step objects"))
        return RawEpisode(ident, {}, meta, problems)
    wanted = {step_field(k): (DTYPES[s["dtype"]], tuple(s["shape"]), k) for k, s in features.items()}
    scalar = {
        "reward": (np.dtype(np.float32), ()),
        "discount": (np.dtype(np.float32), ()),
        "timestamp": (np.dtype(np.float64), ()),
    }
    for name in FLAGS:
        scalar[name] = (np.dtype(np.bool_), ())
    optional = {"reward", "discount", "timestamp", "is_terminal"} - set(wanted)
    fields = {p: (d, s) for p, (d, s, _) in wanted.items()}
    fields.update({p: v for p, v in scalar.items() if p not in fields})
    columns: dict[str, np.ndarray] = {}
    for path, (dtype, shape) in fields.items():
        values, ok = [], True
        for i, step in enumerate(steps):
            value = _lookup(step, path)
            if value is _MISSING:
                if path in optional:
                    ok = False
                    break
                where = "not an object" if not isinstance(step, dict) else f"missing {path!r}"
                problems.append(Problem(ident, path, f"step is {where}", i))
                ok = False
                break
            arr = np.asarray(value) if not isinstance(value, list) else _ragged_safe(value)
            if arr is None or arr.dtype.kind not in "biuf":
                problems.append(Problem(ident, path, "ragged or non-numeric value", i))
                ok = False
                break
            if path in ("reward", "discount", "timestamp") and arr.size == 1 and path not in wanted:
                arr = arr.reshape(())
            if arr.shape != shape and not (path in wanted and arr.size == 1 and math.prod(shape) == 1):
                problems.append(Problem(ident, path, f"shape {list(arr.shape)}, expected {list(shape)}", i))
                ok = False
                break
            if not _kind_ok(arr, dtype):
                problems.append(Problem(ident, path, f"{arr.dtype.kind!r}-kind values do not fit {dtype}", i))
                ok = False
                break
            values.append(arr.reshape(shape))
        if ok:
            columns[path] = np.stack(values).astype(dtype, copy=False)
    return RawEpisode(ident, columns, meta, problems)


_MISSING = object()


def _lookup(step: Any, path: str) -> Any:
    if not isinstance(step, dict):
        return _MISSING
    if path.startswith(("observation/", "extras/")):
        group, name = path.split("/", 1)
        node = step.get(group)
        return node.get(name, _MISSING) if isinstance(node, dict) else _MISSING
    return step.get(path, _MISSING)


def _ragged_safe(value: list) -> np.ndarray | None:
    try:
        return np.asarray(value)
    except ValueError:
        return None


def _kind_ok(arr: np.ndarray, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        return arr.dtype.kind in "fiu"
    if dtype.kind == "b":
        return arr.dtype.kind == "b"
    if arr.dtype.kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max)


def import_rlds_jsonl(path: Path, *, fps: int | None = None, strict: bool = False) -> RldsImport:
    """Import RLDS episodes from a ``.jsonl`` (or ``.json``) file, validating every episode.

    Args:
        path: the file.
        fps: the frame rate; required only when the file has no header and no timestamps.
        strict: raise on the first invalid file instead of reporting and skipping invalid episodes.

    Returns:
        ``RldsImport(features, fps, episodes, report)``: ``episodes`` lazily yields the valid episodes;
        ``report`` names every invalid episode and what is wrong with it.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: a line that is not a JSON object, a bad header, or (strict) any invalid episode.

    Example:
        >>> features, fps, episodes, report = import_rlds_jsonl(Path("/tmp/ep.jsonl"))
        >>> report.ok, [e.task for e in episodes]
        (True, ['wave'])
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound("RLDS file", path)
    header, it = _read_json_episodes(path)
    if header is not None:
        features = check_features(header["features"])
        rate = fps if fps is not None else header.get("fps")
    else:
        first = next(it, None)
        if first is None:
            raise InvalidInput(f"{path.name} holds no episodes and no header", field="path")
        if not isinstance(first[1], dict):
            raise InvalidInput(f"{path.name} episode {first[0]} is not an object", field="path")
        features = _infer_features(first[1])
        rate = fps if fps is not None else _infer_fps(first[1])
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise InvalidInput(
            f"must be a positive integer, got {rate!r}",
            field="fps",
            hint="pass fps= when the file has no header or timestamps",
        )

    def read() -> Iterator[RawEpisode]:
        for number, obj in _read_json_episodes(path)[1]:
            if not isinstance(obj, dict):
                raise InvalidInput(
                    f"{path.name} episode {number} is a {type(obj).__name__}, not an object",
                    field="path",
                    allowed="episode objects",
                )
            yield _jsonl_raw(number, obj, features)

    return run_import(str(path), features, rate, read, strict=strict)


def _infer_fps(obj: Mapping[str, Any]) -> int | None:
    try:
        ts = np.asarray([float(s["timestamp"]) for s in obj["steps"]])
    except (KeyError, TypeError, ValueError):
        return None
    diffs = np.diff(ts)
    if diffs.size == 0 or not np.isfinite(diffs).all() or np.median(diffs) <= 0:
        return None
    return round(1.0 / float(np.median(diffs)))
