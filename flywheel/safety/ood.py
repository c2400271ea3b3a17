"""Out-of-distribution detection: is the robot in a state its training data never showed?

An :class:`OODDetector` is fitted from a dataset (the ``observation.state`` feature by default):

- the **per-feature z-score** ``|x_i - mean_i| / std_i`` uses the dataset's own statistics
  (:func:`flywheel.datasets.stats.dataset_stats`: trims applied, soft-deleted episodes left out); a state is
  out of distribution when any feature is beyond ``z_threshold`` (default 3σ);
- the **Mahalanobis distance** ``sqrt(zᵀ R⁻¹ z)`` of the standardised state, with ``R`` the features'
  correlation matrix shrunk towards the identity (``R = (1 - λ)·C + λ·I``, ``λ = shrinkage``, so constant or
  collinear features cannot make it singular), catches combinations never seen together (each feature
  ordinary, the pair not). Its threshold is the χ² quantile with as many degrees of freedom as features at
  the same tail probability as ``z_threshold`` (3σ two-sided: 0.27 %).

:meth:`OODDetector.flag_dataset` lists the states to show a human (episode and frame indexes, which
feature, both scores); :func:`ood_rate` is the evaluation metric (share of states out of distribution).
Detectors save to and load from JSON.

Example:
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(size=(2000, 3))
    >>> detector = OODDetector.fit(train)
    >>> detector.flags(np.array([[0.1, -0.2, 0.3], [0.0, 9.0, 0.0]])).tolist()
    [False, True]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.errors import InvalidInput

#: Bump when the JSON layout changes; :meth:`OODDetector.load` refuses other versions.
FORMAT_VERSION = 1
DEFAULT_FEATURE = "observation.state"
#: Standard deviations below this are treated as this (a constant feature: any change is out of distribution).
STD_FLOOR = 1e-6


@dataclass(frozen=True)
class OODScores:
    """Scores of N states.

    Attributes:
        z: ``(N, D)`` absolute z-scores.
        max_z: ``(N,)`` the largest z-score of each state.
        feature: ``(N,)`` the index of that feature.
        mahalanobis: ``(N,)`` Mahalanobis distances.
    """

    z: np.ndarray
    max_z: np.ndarray
    feature: np.ndarray
    mahalanobis: np.ndarray


@dataclass(frozen=True)
class OODFlag:
    """One state flagged for human review."""

    episode_index: int
    frame_index: int
    feature_index: int
    max_z: float
    mahalanobis: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


class OODDetector:
    """Per-feature z-scores and a regularised Mahalanobis distance against a fitted distribution.

    Build it with :meth:`fit` (an array of states) or :meth:`from_dataset` (a dataset folder or reader).

    Args:
        mean, std: per-feature statistics, shape ``(D,)``.
        precision: inverse of the shrunk correlation matrix, ``(D, D)``.
        z_threshold: flag when any feature's z-score exceeds it (> 0, default 3).
        shrinkage: the λ the precision was built with (recorded).
        feature: the dataset feature the detector reads.
        names: optional feature names (for review lists).
        count: number of states it was fitted on.
    """

    def __init__(self, *, mean: np.ndarray, std: np.ndarray, precision: np.ndarray, z_threshold: float = 3.0,
                 shrinkage: float = 0.05, feature: str = DEFAULT_FEATURE, names: list[str] | None = None,
                 count: int = 0) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.maximum(np.asarray(std, dtype=np.float64).reshape(-1), STD_FLOOR)
        self.precision = np.asarray(precision, dtype=np.float64)
        dim = len(self.mean)
        if self.std.shape != (dim,) or self.precision.shape != (dim, dim):
            raise InvalidInput(f"mean {self.mean.shape}, std {self.std.shape}, precision {self.precision.shape}",
                               field="detector", allowed="mean and std of shape (D,), precision (D, D)")
        self.z_threshold = _check_threshold(z_threshold)
        self.shrinkage = float(shrinkage)
        self.feature = feature
        self.names = list(names) if names else None
        self.count = int(count)
        self.mahalanobis_threshold = mahalanobis_threshold(dim, self.z_threshold)

    # --- fitting ------------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, states: Any, *, z_threshold: float = 3.0, shrinkage: float = 0.05,
            mean: np.ndarray | None = None, std: np.ndarray | None = None, feature: str = DEFAULT_FEATURE,
            names: list[str] | None = None) -> OODDetector:
        """Fit on ``(N, D)`` states (N ≥ 2); ``mean``/``std`` default to the states' own.

        Raises:
            InvalidInput: too few or non-finite states (``states``), ``shrinkage`` outside [0, 1],
                ``z_threshold`` ≤ 0.

        Example:
            >>> OODDetector.fit(np.zeros((1, 2)))
            Traceback (most recent call last):
            ...
            flywheel.errors.InvalidInput: states: got 1 states of 2 features (allowed: at least 2 finite states (N, D))
        """
        x = _as_states(states, None)
        if len(x) < 2 or not np.isfinite(x).all():
            raise InvalidInput(f"got {len(x)} states of {x.shape[1]} features", field="states",
                               allowed="at least 2 finite states (N, D)")
        if not (isinstance(shrinkage, int | float) and 0.0 <= shrinkage <= 1.0):
            raise InvalidInput(f"got {shrinkage!r}", field="shrinkage", allowed="a number in [0, 1]")
        mean = x.mean(axis=0) if mean is None else np.asarray(mean, np.float64).reshape(-1)
        std = x.std(axis=0) if std is None else np.asarray(std, np.float64).reshape(-1)
        std = np.maximum(std, STD_FLOOR)
        z = (x - mean) / std
        corr = (z.T @ z) / len(z)
        scale = np.sqrt(np.clip(np.diag(corr), STD_FLOOR, None))
        corr = corr / np.outer(scale, scale)  # a correlation matrix even if mean/std came from elsewhere
        shrunk = (1.0 - shrinkage) * corr + shrinkage * np.eye(len(corr))
        precision = np.linalg.pinv(shrunk, hermitian=True)
        return cls(mean=mean, std=std, precision=precision, z_threshold=z_threshold, shrinkage=shrinkage,
                   feature=feature, names=names, count=len(x))

    @classmethod
    def from_dataset(cls, dataset: Any, *, feature: str = DEFAULT_FEATURE, z_threshold: float = 3.0,
                     shrinkage: float = 0.05) -> OODDetector:
        """Fit on a dataset's ``feature``: mean and std from its statistics, correlations from its frames.

        Args:
            dataset: a :class:`~flywheel.datasets.reader.DatasetReader` or a dataset folder.

        Raises:
            InvalidInput: the dataset has no such numeric feature (``feature``, allowed: its numeric features).

        Example:
            >>> detector = OODDetector.from_dataset(Path("demos"))  # doctest: +SKIP
            >>> detector.ood_rate(states)  # doctest: +SKIP
            0.004
        """
        from flywheel.datasets.stats import dataset_stats

        reader = _reader(dataset)
        numeric = sorted(k for k, v in reader.features.items() if v.get("dtype") not in ("video", "image", "string"))
        if feature not in numeric:
            raise InvalidInput(f"the dataset has no numeric feature {feature!r}", field="feature", allowed=numeric)
        stats = dataset_stats(reader)[feature]
        states = np.concatenate([ep.columns[feature].reshape(len(ep.columns[feature]), -1)
                                 for ep in reader.iter_episodes(include_videos=False)])
        names = reader.features[feature].get("names")
        names = list(names) if isinstance(names, list) and all(isinstance(n, str) for n in names) else None
        return cls.fit(states, z_threshold=z_threshold, shrinkage=shrinkage, mean=stats["mean"], std=stats["std"],
                       feature=feature, names=names)

    # --- scoring ------------------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of features."""
        return len(self.mean)

    def score(self, states: Any) -> OODScores:
        """z-scores and Mahalanobis distances of ``(N, D)`` states (or one ``(D,)`` state).

        Non-finite values score ``inf`` (always flagged).
        """
        x = _as_states(states, self.dim)
        z = (x - self.mean) / self.std
        bad = ~np.isfinite(z)
        z = np.where(bad, np.inf, z)
        zf = np.where(bad, 0.0, z)
        maha = np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", zf, self.precision, zf), 0.0))
        maha = np.where(bad.any(axis=1), np.inf, maha)
        absz = np.abs(z)
        return OODScores(z=absz, max_z=absz.max(axis=1), feature=absz.argmax(axis=1), mahalanobis=maha)

    def flags(self, states: Any) -> np.ndarray:
        """``(N,)`` booleans: True where a state is out of distribution (either score over its threshold)."""
        s = self.score(states)
        return (s.max_z > self.z_threshold) | (s.mahalanobis > self.mahalanobis_threshold)

    def ood_rate(self, states: Any) -> float:
        """The share of states out of distribution (the evaluation metric ``ood_rate``)."""
        flags = self.flags(states)
        return float(flags.mean()) if len(flags) else 0.0

    def review(self, states: Any, *, episode_index: int = 0, frame_offset: int = 0) -> list[OODFlag]:
        """The flagged states of one episode, for human review, with their frame indexes."""
        s = self.score(states)
        out = []
        for i in np.flatnonzero((s.max_z > self.z_threshold) | (s.mahalanobis > self.mahalanobis_threshold)):
            j = int(s.feature[i])
            name = self.names[j] if self.names and j < len(self.names) else f"{self.feature}[{j}]"
            if s.max_z[i] > self.z_threshold:
                reason = f"{name} is {s.max_z[i]:.1f}σ from the mean (threshold {self.z_threshold:g}σ)"
            else:
                reason = (f"Mahalanobis distance {s.mahalanobis[i]:.1f} > {self.mahalanobis_threshold:.1f}: "
                          "an unseen combination of features")
            out.append(OODFlag(episode_index, frame_offset + int(i), j, float(s.max_z[i]), float(s.mahalanobis[i]),
                               reason))
        return out

    def flag_dataset(self, dataset: Any) -> list[OODFlag]:
        """Every out-of-distribution state of a dataset (visible frames), with episode and frame indexes.

        Frame indexes are those of the stored episode (trims are accounted for).
        """
        reader = _reader(dataset)
        flagged: list[OODFlag] = []
        for ep in reader.iter_episodes(include_videos=False):
            if self.feature not in ep.columns:
                raise InvalidInput(f"the dataset has no feature {self.feature!r}", field="feature",
                                   allowed=sorted(reader.features))
            start = int(ep.metadata.get("start_frame", 0) or 0)
            flagged += self.review(ep.columns[self.feature], episode_index=int(ep.metadata["episode_index"]),
                                   frame_offset=start)
        return flagged

    # --- persistence --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return {"format_version": FORMAT_VERSION, "feature": self.feature, "names": self.names, "count": self.count,
                "z_threshold": self.z_threshold, "shrinkage": self.shrinkage, "mean": self.mean.tolist(),
                "std": self.std.tolist(), "precision": self.precision.tolist()}

    def save(self, path: Path | str) -> Path:
        """Write the detector as JSON (temporary file, fsync, rename); returns the path."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out)
            out.flush()
            os.fsync(out.fileno())
        return tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> OODDetector:
        """Read a detector saved by :meth:`save`.

        Raises:
            InvalidInput: the file is missing, not JSON, or of another format version (``field="detector"``).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {path}: {exc}", field="detector",
                               allowed="a JSON file written by OODDetector.save") from None
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise InvalidInput(f"{path} is not an OOD detector of format {FORMAT_VERSION}", field="detector",
                               allowed=f"format_version {FORMAT_VERSION}")
        return cls(mean=np.array(data["mean"]), std=np.array(data["std"]), precision=np.array(data["precision"]),
                   z_threshold=data["z_threshold"], shrinkage=data["shrinkage"], feature=data["feature"],
                   names=data.get("names"), count=data.get("count", 0))


def mahalanobis_threshold(dim: int, z_threshold: float = 3.0) -> float:
    """The Mahalanobis distance with the same tail probability in ``dim`` dimensions as ``z_threshold`` in one.

    Example:
        >>> round(mahalanobis_threshold(1), 6), round(mahalanobis_threshold(4), 2)
        (3.0, 4.03)
    """
    from scipy.stats import chi2

    tail = math.erfc(z_threshold / math.sqrt(2.0))  # two-sided tail of a standard normal
    return float(math.sqrt(chi2.isf(tail, dim)))


def ood_rate(detector: OODDetector, episodes: Any) -> float:
    """The evaluation metric: share of out-of-distribution states over episodes.

    Args:
        episodes: an :class:`~flywheel.training.base.EvalSummary` (its recorded episodes), a list of
            :class:`~flywheel.datasets.episode.EpisodeArrays`, or an ``(N, D)`` array.

    Example:
        >>> detector = OODDetector.fit(np.random.default_rng(0).normal(size=(500, 2)))
        >>> ood_rate(detector, np.array([[0.0, 0.0], [50.0, 0.0]]))
        0.5
    """
    items = getattr(episodes, "episodes", episodes)
    if isinstance(items, np.ndarray):
        return detector.ood_rate(items)
    arrays = [np.asarray(ep.columns[detector.feature]) for ep in items]
    if not arrays:
        return 0.0
    return detector.ood_rate(np.concatenate([a.reshape(len(a), -1) for a in arrays]))


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < 100):
        raise InvalidInput(f"got {value!r}", field="z_threshold", allowed="a number in (0, 100), e.g. 3")
    return float(value)


def _as_states(states: Any, dim: int | None) -> np.ndarray:
    try:
        x = np.asarray(states, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("not numbers", field="states", allowed="an (N, D) array of numbers") from None
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise InvalidInput(f"got shape {x.shape}", field="states",
                           allowed=f"(N, {dim}) or ({dim},)" if dim is not None else "(N, D)")
    return x


def _reader(dataset: Any) -> Any:
    from flywheel.datasets.reader import DatasetReader

    return dataset if isinstance(dataset, DatasetReader) else DatasetReader(Path(dataset))
