"""Validation of frames and episode columns against a dataset's features.

Every check names the feature that failed and changes nothing: the caller validates first and writes
only validated values. Accepted values per feature: a numpy array or Python scalar whose dtype casts to
the feature dtype within its kind (int → float is fine, float → int is not), of the declared shape, with
finite values for float features. ``next.reward`` and ``next.done`` are optional extra columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flywheel.datasets.format import DEFAULT_FEATURES, OPTIONAL_COLUMNS
from flywheel.errors import InvalidInput

_OPTIONAL = {k: DEFAULT_FEATURES[k] for k in OPTIONAL_COLUMNS}


def _spec_of(key: str, features: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec = features.get(key) or _OPTIONAL.get(key)
    if spec is None:
        raise InvalidInput("is not a feature of this dataset", field=key,
                           allowed=sorted([*features, *OPTIONAL_COLUMNS]))
    return spec


def _check_dtype(key: str, value: np.ndarray, dtype: str) -> np.ndarray:
    target = np.dtype("uint8" if dtype == "video" else dtype)
    if value.dtype == target:
        return value
    ok = (np.can_cast(value.dtype, target, casting="same_kind") if target.kind != "b"
          else value.dtype.kind == "b")
    if target.kind in "iu" and value.dtype.kind not in "iub":
        ok = False
    if not ok:
        raise InvalidInput(f"has dtype {value.dtype}, which does not cast to {target}", field=key,
                           allowed=str(target))
    return value.astype(target)


def _check_finite(key: str, value: np.ndarray, where: str = "") -> None:
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        bad = np.argwhere(~np.isfinite(value))[0].tolist()
        raise InvalidInput(f"has a non-finite value{where} at position {bad}", field=key,
                           allowed="finite numbers")


def validate_frame(frame: dict[str, Any], features: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Check one frame and return it as arrays of the feature dtypes and shapes.

    Args:
        frame: feature key -> value, for every user feature; ``next.reward``/``next.done`` optional.
        features: the dataset's user features.

    Raises:
        InvalidInput: a missing or unknown feature, a wrong dtype or shape, a non-finite value.

    Example:
        >>> feats = {"action": {"dtype": "float32", "shape": [2]}}
        >>> validate_frame({"action": np.zeros(2)}, feats)["action"].dtype
        dtype('float32')
    """
    if not isinstance(frame, dict):
        raise InvalidInput(f"must be a dict of feature -> value, got {type(frame).__name__}", field="frame")
    for key in features:
        if key not in frame:
            raise InvalidInput("is missing from the frame", field=key, allowed=sorted(features))
    out: dict[str, np.ndarray] = {}
    for key, raw in frame.items():
        spec = _spec_of(key, features)
        value = raw if type(raw) is np.ndarray else np.asarray(raw)
        if value.dtype == object or value.dtype.kind in "USV":
            raise InvalidInput(f"must be numeric, got {type(raw).__name__}", field=key, allowed=spec["dtype"])
        shape = tuple(spec["shape"])
        if value.shape != shape:
            if shape == (1,) and value.shape == ():
                value = value.reshape(1)
            else:
                raise InvalidInput(f"has shape {value.shape}, expected {shape}", field=key, allowed=list(shape))
        value = _check_dtype(key, value, spec["dtype"])
        _check_finite(key, value)
        out[key] = value
    return out


def validate_columns(columns: dict[str, Any], features: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Check a whole episode given as columns and return them as (T, *shape) arrays.

    Raises:
        InvalidInput: a missing or unknown feature, a wrong dtype or shape, columns of different
            lengths, an empty episode, a non-finite value (its frame is named).

    Example:
        >>> feats = {"action": {"dtype": "float32", "shape": [2]}}
        >>> validate_columns({"action": np.zeros((5, 2))}, feats)["action"].shape
        (5, 2)
    """
    for key in features:
        if key not in columns:
            raise InvalidInput("is missing from the episode", field=key, allowed=sorted(features))
    out: dict[str, np.ndarray] = {}
    length: int | None = None
    for key, raw in columns.items():
        spec = _spec_of(key, features)
        value = np.asarray(raw)
        if value.dtype == object or value.dtype.kind in "USV":
            raise InvalidInput("must be a numeric array", field=key, allowed=spec["dtype"])
        shape = tuple(spec["shape"])
        if value.ndim == 1 and shape == (1,):
            value = value.reshape(-1, 1)
        if value.ndim < 1 or value.shape[1:] != shape:
            raise InvalidInput(f"has shape {value.shape}, expected (T, {', '.join(map(str, shape))})",
                               field=key, allowed=["T", *shape])
        if length is None:
            length = len(value)
        elif len(value) != length:
            raise InvalidInput(f"has {len(value)} frames where other columns have {length}", field=key)
        value = _check_dtype(key, value, spec["dtype"])
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            frame_idx = int(np.argwhere(~np.isfinite(value.reshape(len(value), -1)))[0][0])
            raise InvalidInput(f"has a non-finite value in frame {frame_idx}", field=key,
                               allowed="finite numbers")
        out[key] = value
    if not length:
        raise InvalidInput("an episode needs at least one frame", field="columns")
    return out
