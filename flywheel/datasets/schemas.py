"""Request and response schemas of the dataset catalog, apart from the ORM models (CLI and API validate with these).

Example:
    >>> DatasetCreate(name="demos", features={"action": {"dtype": "float32", "shape": [2]}}).fps
    50
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from flywheel.datasets.format import FEATURE_DTYPES, validate_features
from flywheel.errors import InvalidInput
from flywheel.platform.schemas import _NAME_CHECK, _Input, _Public, name_field

#: Where episodes can come from when creating, importing or appending.
SOURCE_FORMATS = ("flywheel", "lerobot", "rlds-jsonl", "tfrecord", "rosbag")
#: What a dataset can be exported as.
EXPORT_FORMATS = ("lerobot", "rlds-jsonl", "tfrecord")
#: Clip formats of `render`.
RENDER_FORMATS = ("mp4", "gif")

SourceFormat = Literal["flywheel", "lerobot", "rlds-jsonl", "tfrecord", "rosbag"]
ExportFormat = Literal["lerobot", "rlds-jsonl", "tfrecord"]
EVAL_REFUSAL = "evals are created by jobs (with their provenance), not uploaded or appended to"


class FeatureSpec(_Input):
    """One feature: `{dtype, shape, names}` as LeRobot declares it."""

    dtype: Literal["float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool", "video"] = Field(
        description="Numeric dtype, or `video` for a camera (shape [H, W, 3])."
    )
    shape: list[Annotated[int, Field(ge=1, le=65_536)]] = Field(min_length=1, max_length=3)
    names: list[str] | dict[str, Any] | None = Field(None, description="Names of the entries, optional.")


class DatasetCreate(_Input):
    """An empty dataset: its features, frame rate and robot type."""

    name: Annotated[str, _NAME_CHECK] = name_field()
    description: str = Field("", max_length=100_000)
    features: dict[Annotated[str, Field(min_length=1, max_length=200)], FeatureSpec] = Field(
        min_length=1, max_length=1000, description="Feature key -> {dtype, shape, names}."
    )
    fps: int = Field(50, ge=1, le=10_000)
    robot_type: str = Field("unknown", min_length=1, max_length=100)
    generated_by_experiment_id: str | None = Field(
        None, max_length=32, description="Refused (409): evals are created by jobs, not uploaded."
    )
    generated_by_iteration_id: str | None = Field(None, max_length=32, description="Refused (409), as above.")
    generated_by_job_id: str | None = Field(None, max_length=32, description="Refused (409), as above.")

    @field_validator("features")
    @classmethod
    def _features(cls, value: dict[str, FeatureSpec]) -> dict[str, FeatureSpec]:
        try:
            validate_features({k: v.model_dump() for k, v in value.items()})
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    def feature_dicts(self) -> dict[str, dict[str, Any]]:
        """The features as plain dicts (what the writer takes)."""
        return validate_features({k: v.model_dump() for k, v in self.features.items()})

    @property
    def asks_for_eval(self) -> bool:
        """Whether any provenance field is set (refused: evals come from jobs)."""
        return any((self.generated_by_experiment_id, self.generated_by_iteration_id, self.generated_by_job_id))


class DatasetUpdate(_Input):
    """Rename or describe a dataset; the episodes are edited with their own operations."""

    name: Annotated[str | None, _NAME_CHECK] = name_field(None)
    description: str | None = Field(None, max_length=100_000)


class DatasetPublic(_Public):
    """A dataset (or eval) with its episode counts from the mirror."""

    id: str
    name: str
    description: str
    robot_type: str
    fps: int
    features: dict[str, Any]
    root_path: str
    is_eval: bool
    generated_by_experiment_id: str | None
    generated_by_iteration_id: str | None
    generated_by_job_id: str | None
    created_at: datetime
    episodes: int = Field(0, description="Visible episodes (soft-deleted ones not counted).")
    deleted_episodes: int = Field(0, description="Soft-deleted episodes, still on disk until compaction.")
    frames: int = Field(0, description="Visible frames (trims applied, soft-deleted episodes left out).")
    chunks: int = Field(0, description="Append batches.")


class EpisodePublic(_Public):
    """One episode's record, as mirrored in the database."""

    episode_index: int
    episode_id: str
    chunk_id: int
    created_at: datetime
    total_frames: int
    start_frame: int
    end_frame: int
    task: str
    success: bool | None
    soft_deleted: bool
    source: str
    skew_flagged: bool
    max_skew_ms: float | None

    @property
    def length(self) -> int:
        """Visible frames after the trim."""
        return self.end_frame - self.start_frame


class EpisodeQuery(_Input):
    """Filters over a dataset's episodes; every filter left out matches everything."""

    created_after: datetime | None = Field(None, description="Created at or after (ISO 8601, with a timezone).")
    created_before: datetime | None = Field(None, description="Created before (ISO 8601, with a timezone).")
    success: Literal["yes", "no", "unknown"] | None = Field(None, description="Success label; default any.")
    task: list[Annotated[str, Field(min_length=1, max_length=10_000)]] | None = Field(None, max_length=100)
    chunk_id: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(None, max_length=1000)
    deleted: Literal["no", "yes", "any"] = Field("no", description="Soft-deleted episodes: hide, only, or both.")
    limit: int = Field(1000, ge=1, le=100_000)
    offset: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("created_after", "created_before")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone, e.g. 2025-01-01T00:00:00Z")
        return value


class TrimRequest(_Input):
    """Show only frames start_frame..end_frame (end exclusive); metadata only."""

    start_frame: int = Field(ge=0, le=2**31 - 1)
    end_frame: int = Field(ge=1, le=2**31 - 1)


class EpisodeSelection(_Input):
    """Episodes by index."""

    episode_indexes: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(min_length=1, max_length=100_000)


class SuccessLabel(_Input):
    """An episode's success label: true, false, or null for unknown."""

    success: bool | None


class CompactPublic(BaseModel):
    """What a compaction did."""

    dataset_id: str
    episodes_before: int
    episodes_after: int
    frames_before: int
    frames_after: int
    removed_episode_ids: list[str]
    index_map: dict[int, int]


class ProblemPublic(BaseModel):
    """One problem a verification found."""

    severity: str
    message: str
    episode_index: int | None = None
    path: str | None = None


class VerifyPublic(BaseModel):
    """A verification report: damaged episodes named by index."""

    dataset_id: str
    ok: bool
    episodes_checked: int
    damaged_episodes: list[int]
    problems: list[ProblemPublic]


class ImportPublic(BaseModel):
    """What an import, upload or append added, and what it refused (the validation report)."""

    dataset: DatasetPublic
    format: str
    chunk_id: int | None
    episodes_added: int
    frames_added: int
    episodes_invalid: int = 0
    report: list[str] = Field(default_factory=list, description="One line per problem found (RLDS/TFRecord).")


class ExportPublic(BaseModel):
    """What an export wrote."""

    dataset_id: str
    format: str
    path: str
    manifest_path: str
    episodes: int
    frames: int
    manifest: dict[str, Any]


class FeatureStats(BaseModel):
    """Statistics of one feature over the visible frames (per entry)."""

    min: list[Any]
    max: list[Any]
    mean: list[Any]
    std: list[Any]
    count: list[int]


class StatsPublic(BaseModel):
    """Feature statistics for normalisation."""

    dataset_id: str
    episodes: int
    frames: int
    features: dict[str, FeatureStats]


__all__ = [
    "EVAL_REFUSAL", "EXPORT_FORMATS", "FEATURE_DTYPES", "RENDER_FORMATS", "SOURCE_FORMATS", "CompactPublic",
    "DatasetCreate", "DatasetPublic", "DatasetUpdate", "EpisodePublic", "EpisodeQuery", "EpisodeSelection",
    "ExportPublic", "FeatureSpec", "ImportPublic", "ProblemPublic", "StatsPublic", "SuccessLabel", "TrimRequest",
    "VerifyPublic",
]
