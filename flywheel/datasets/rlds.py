"""RLDS episodes as JSON Lines: export with a manifest, import with a validation report.

The step fields and episode metadata are those of ``flywheel.datasets.rlds_steps``.

File layout (``.jsonl``): the first line is ``{"rlds_header": {"format": "flywheel-rlds", "version": 1,
"fps": ..., "features": {...}, "origin": ...}}``; every further line is one episode
``{"episode_metadata": {...}, "steps": [{"observation": {...}, "action": [...], "reward": 0.0, ...}]}``.
A ``.json`` file holds ``{"rlds_header": ..., "episodes": [...]}`` or a bare list of episodes. Files
without a header are accepted: features are inferred from the first step (floats → float32, integers →
int64, booleans → bool) and fps from the timestamps, unless given.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

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
    run_import,
    step_field,
)
from flywheel.durable import commit_temp, temp_path
from flywheel.errors import InvalidInput, NotFound


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
    tmp = temp_path(out_path)
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
        commit_temp(tmp, out_path)
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
