"""Request and response schemas, apart from the ORM models. The CLI and the API validate with these."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def _plain_text(forbidden: str, what: str) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is not None and any(ord(ch) < 32 or ch in forbidden for ch in value):
            raise ValueError(f"must not contain {what}")
        return value

    return AfterValidator(check)


_NAME_CHECK = _plain_text("/\\", "control characters (tabs, newlines) or slashes")
_ASSET_NAME_CHECK = _plain_text("", "control characters (tabs, newlines)")


def name_field(default: Any = ...) -> Any:
    """A name: 1-200 characters, no control characters or slashes."""
    return Field(default, min_length=1, max_length=200)


SHOWCASE_LIMIT = 5


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """Refuse what no database column can hold: NUL characters (PostgreSQL rejects them) and NaN/inf in JSON."""
        problem = _unstorable(value)
        if problem:
            raise ValueError(problem)
        return value


# --- users -------------------------------------------------------------------------------------------


class UserCreate(_Input):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    spend_limit_usd: float = Field(100.0, ge=0, le=1e9)


class UserPublic(_Public):
    id: str
    name: str
    spend_limit_usd: float
    spend_usd: float
    created_at: datetime


class UserCreated(UserPublic):
    api_key: str = Field(description="Shown once; only its hash is stored.")


# --- projects ----------------------------------------------------------------------------------------


class ShowcaseRef(_Input):
    eval_id: str = Field(min_length=1, max_length=32)
    episode_index: int = Field(0, ge=0, le=2**31 - 1)


class ProjectCreate(_Input):
    name: Annotated[str, _NAME_CHECK] = name_field()
    description: str = Field("", max_length=100_000)


class ProjectUpdate(_Input):
    name: Annotated[str | None, _NAME_CHECK] = name_field(None)
    description: str | None = Field(None, max_length=100_000)
    showcases: list[ShowcaseRef] | None = Field(
        None, description=f"The project's showcase videos, at most {SHOWCASE_LIMIT}, each from an eval of its own."
    )


class ShowcasePublic(_Public):
    eval_id: str
    episode_index: int
    position: int


class ProjectPublic(_Public):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    showcases: list[ShowcasePublic]


# --- templates ---------------------------------------------------------------------------------------


class TemplatePublic(_Public):
    id: str
    name: str
    version: int
    description: str
    config_schema: dict[str, Any]
    default_config: dict[str, Any]
    git_commit: str
    created_at: datetime


# --- experiments -------------------------------------------------------------------------------------


class ExperimentCreate(_Input):
    project_id: str = Field(min_length=1, max_length=200)
    name: Annotated[str, _NAME_CHECK] = name_field()
    parent_id: str | None = Field(None, max_length=32)
    description: str = Field("", max_length=100_000)
    template_id: str | None = Field(None, max_length=100)
    template_config: dict[str, Any] = Field(default_factory=dict)
    git_repo: str = Field("", max_length=500)
    git_commit: str = Field("", max_length=64)
    dataset_ids: list[str] = Field(default_factory=list, max_length=1000)


class ExperimentUpdate(_Input):
    name: Annotated[str | None, _NAME_CHECK] = name_field(None)
    description: str | None = Field(None, max_length=100_000)
    parent_id: str | None = Field(None, max_length=32, description="Move under this experiment.")
    make_root: bool = Field(False, description="Move to the top of the tree (no parent).")
    template_config: dict[str, Any] | None = None
    git_repo: str | None = Field(None, max_length=500)
    git_commit: str | None = Field(None, max_length=64)


class ExperimentFork(_Input):
    name: Annotated[str, _NAME_CHECK] = name_field()
    iteration_index: int | None = Field(
        None, ge=0, le=2**31 - 1, description="The iteration to fork from; default the latest one."
    )
    parent_id: str | None = Field(
        None, max_length=32, description="Where the fork sits in the tree; default beside the source."
    )


class ExperimentPublic(_Public):
    id: str
    project_id: str
    parent_id: str | None
    forked_from_id: str | None
    forked_from_iteration_id: str | None
    template_id: str | None
    template_config: dict[str, Any]
    name: str
    description: str
    git_repo: str
    git_commit: str
    next_iteration_index: int
    dataset_ids: list[str]
    created_at: datetime

    @classmethod
    def of(cls, experiment: Any) -> ExperimentPublic:
        return cls.model_validate({**_columns(experiment), "dataset_ids": [d.id for d in experiment.datasets]})


class TreeNode(BaseModel):
    """An experiment and its children, for drawing trees."""

    id: str
    name: str
    forked_from_id: str | None
    forked_from_iteration_index: int | None
    iterations: int
    assets: int
    children: list[TreeNode]


# --- iterations --------------------------------------------------------------------------------------


class IterationCreate(_Input):
    notes: str = Field("", max_length=100_000)
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    input_dataset_ids: list[str] = Field(default_factory=list, max_length=1000)
    input_asset_ids: list[str] = Field(default_factory=list, max_length=1000)


class IterationNote(_Input):
    notes: str = Field(max_length=100_000)
    append: bool = Field(False, description="Add to the notes instead of replacing them.")


class IterationPublic(_Public):
    id: str
    experiment_id: str
    index: int
    notes: str
    config_overrides: dict[str, Any]
    status: str
    job_id: str | None
    input_dataset_ids: list[str]
    input_asset_ids: list[str]
    output_asset_ids: list[str]
    output_eval_ids: list[str]
    created_at: datetime

    @classmethod
    def of(cls, iteration: Any) -> IterationPublic:
        return cls.model_validate(
            {
                **_columns(iteration),
                "input_dataset_ids": [d.id for d in iteration.input_datasets],
                "input_asset_ids": [a.id for a in iteration.input_assets],
                "output_asset_ids": [a.id for a in iteration.output_assets],
                "output_eval_ids": [e.id for e in iteration.output_evals],
            }
        )


# --- assets ------------------------------------------------------------------------------------------

Tag = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.:-]+$")


class AssetCreate(_Input):
    experiment_id: str = Field(min_length=1, max_length=32)
    name: Annotated[str, _ASSET_NAME_CHECK] = Field(min_length=1, max_length=300)
    iteration_id: str | None = Field(None, max_length=32)
    tags: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        return [TagModel(tag=t).tag for t in tags]


class TagModel(_Input):
    tag: str = Tag


class AssetPublic(_Public):
    id: str
    experiment_id: str
    iteration_id: str | None
    name: str
    tags: list[str]
    blob_hash: str
    size: int
    linked_from_id: str | None
    created_at: datetime


# --- lineage -----------------------------------------------------------------------------------------


class LineageLink(BaseModel):
    """One object in a provenance chain."""

    kind: str
    id: str
    name: str


class Lineage(BaseModel):
    """Where an object came from: its chain up to the project, and for evals the job and template."""

    chain: list[LineageLink]
    produced_by: list[LineageLink]


def _unstorable(value: Any) -> str | None:
    """Why `value` (a string, or JSON-like lists and dicts of them) cannot be stored, or None."""
    if isinstance(value, str):
        return "must not contain NUL (\\x00) characters" if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite (no NaN or infinity)"
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
        return next((p for p in map(_unstorable, items) if p), None)
    if isinstance(value, list | tuple):
        return next((p for p in map(_unstorable, value) if p), None)
    return None


def _columns(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}
