"""The RLDS step model shared by the JSON Lines and TFRecord codecs: features, step fields, episode checks.

Flywheel feature keys map to RLDS step fields:

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

Import assembly: a codec reads each episode into a ``RawEpisode`` (step fields as arrays, or problems);
``run_import`` checks them with ``finish_episode`` and returns an ``RldsImport``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.rlds_report import Problem, ValidationReport
from flywheel.errors import InvalidInput

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


# --------------------------------------------------------------------------- import assembly


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
