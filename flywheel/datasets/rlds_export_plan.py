"""RLDS export assembly shared by the JSON Lines and TFRecord codecs.

The checked export arguments (``plan_export``), the features actually exported, the header, and the
episode metadata with the operator id replaced by its pseudonym.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.export_manifest import anonymiser
from flywheel.datasets.rlds_steps import BOOKKEEPING, FORMAT_NAME, FORMAT_VERSION, check_features
from flywheel.errors import InvalidInput


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
