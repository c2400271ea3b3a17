"""Request and response bodies of the jobs API and CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flywheel.platform.schemas import _Input

JobKind = Literal["train", "sleep"]


class JobSubmit(_Input):
    """What to run: a template (or the trivial `sleep` kind), where its iteration goes, and on what."""

    kind: JobKind = Field("train", description="`train` runs a template; `sleep` is a trivial job for tests "
                          "and benchmarks (config: seconds, steps, crash).")
    template: str | None = Field(None, min_length=1, max_length=100, description="Template id (train jobs).")
    project: str = Field(min_length=1, max_length=200, description="Project id or name.")
    experiment: str = Field(min_length=1, max_length=200,
                            description="Experiment id or name in the project; created when missing.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Config values for this iteration.")
    dataset_ids: list[str] = Field(default_factory=list, max_length=100, description="Input datasets.")
    init_asset_id: str | None = Field(None, max_length=32, description="A checkpoint asset to start from.")
    notes: str = Field("", max_length=100_000)
    runner: str = Field("local", min_length=1, max_length=20, description="Where it runs: local, ray, skypilot.")
    gpu_type: str = Field("cpu", min_length=1, max_length=40, description="GPU type, for the price (cpu: none).")
    spot: bool = Field(False, description="Spot (preemptible) capacity instead of on-demand.")
    max_runtime_s: float | None = Field(None, gt=0, le=30 * 86_400,
                                        description="Time limit (default FLYWHEEL_JOB_MAX_RUNTIME_S).")


class JobEventPublic(BaseModel):
    """One transition or note."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    from_status: str
    to_status: str
    reason: str
    message: str


class JobPublic(BaseModel):
    """A job as the API and `--json` show it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: str
    reason: str
    error: str
    owner_id: str
    experiment_id: str
    iteration_id: str | None
    iteration_index: int
    template_id: str | None
    template_commit: str
    config: dict[str, Any]
    overrides: dict[str, Any]
    input_dataset_ids: list[str]
    input_asset_ids: list[str]
    runner: str
    gpu_type: str
    spot: bool
    price_per_hour_usd: float
    max_runtime_s: float
    estimated_cost_usd: float
    current_cost_usd: float
    final_cost_usd: float | None
    attempt: int
    stop_requested: str
    pid: int | None
    heartbeat_at: datetime | None
    elapsed_s: float
    step: int
    epoch: int
    metrics: dict[str, Any]
    output_asset_ids: list[str]
    eval_ids: list[str]
    log_path: str
    log_asset_id: str | None
    created_at: datetime
    queued_at: datetime | None
    provisioning_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class JobDetail(JobPublic):
    """A job with its event history."""

    events: list[JobEventPublic] = Field(default_factory=list)
