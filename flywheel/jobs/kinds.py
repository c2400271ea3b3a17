"""What a job runs: `train` (a template, for real) or `sleep` (a trivial job for tests and benchmarks).

`sleep` exists so the queue, the scheduler and the runners can be tested and measured without training
anything: it sleeps `seconds` in `steps` slices, reporting each step like a template would, honours
`should_stop`, and can be told to `crash` (an exception, a non-zero exit, or SIGKILL of itself, which is
what the kernel's OOM killer does). Its iteration is completed with a note saying it was a sleep job;
no training is claimed.

Example:
    >>> SleepConfig(seconds=0.5, steps=5).seconds
    0.5
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput
from flywheel.jobs.models import Job
from flywheel.platform import access
from flywheel.platform.models import Experiment, Iteration, User
from flywheel.settings import get_settings

Report = Callable[[int, dict[str, float]], None]
ShouldStop = Callable[[], bool]


class SleepConfig(BaseModel):
    """The `sleep` job's config."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(0.0, ge=0, le=86_400, description="How long to sleep in all.")
    steps: int = Field(1, ge=1, le=1_000_000, description="Slices (one report each).")
    crash: Literal["exception", "exit", "kill"] | None = Field(
        None, description="Fail at the middle step: raise, exit(3), or SIGKILL itself (like the OOM killer).")


def parse_sleep_config(values: dict[str, object]) -> SleepConfig:
    """Validate a sleep config, naming the bad key."""
    try:
        return SleepConfig.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error.get("loc", ()))
        raise InvalidInput(error.get("msg", "invalid"), field=f"config.{key}" if key else "config",
                           allowed=sorted(SleepConfig.model_fields)) from None


@dataclass
class Outcome:
    """What a job's run left: output asset ids, eval dataset ids, and a line for the iteration's notes."""

    asset_ids: list[str] = field(default_factory=list)
    eval_ids: list[str] = field(default_factory=list)
    summary: str = ""


def run_sleep(config: SleepConfig, *, report: Report, should_stop: ShouldStop) -> Outcome:
    """Sleep in slices, reporting each; stop early when asked; crash when told to."""
    pause = config.seconds / config.steps
    for step in range(1, config.steps + 1):
        if should_stop():
            return Outcome(summary=f"sleep job stopped at step {step - 1}/{config.steps}")
        if config.crash and step == (config.steps + 1) // 2:
            print(f"sleep job: crashing on purpose ({config.crash}) at step {step}", flush=True)
            if config.crash == "exception":
                raise RuntimeError("sleep job told to crash")
            if config.crash == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(pause)
        report(step, {"charts/step": float(step)})
    return Outcome(summary=f"sleep job (queue test, no training): {config.steps} steps in {config.seconds:g} s")


def run_train(session: Session, user: User, job: Job, iteration: Iteration, *, report: Report,
              should_stop: ShouldStop) -> Outcome:
    """Run the job's template with the config recorded at submission, and store its outputs on the iteration."""
    from flywheel.blobs import get_blob_store
    from flywheel.training.base import RunContext, RunInputs
    from flywheel.training.runner import Prepared, store_outputs
    from flywheel.training.templates import get_template_impl, parse_config

    template = get_template_impl(job.template_id or "")
    config = parse_config(template.id, job.config)
    experiment = session.get(Experiment, job.experiment_id)
    if experiment is None:
        raise InvalidInput(f"experiment {job.experiment_id} was deleted", field="experiment")
    datasets = [access.dataset(session, user, ident) for ident in job.input_dataset_ids]
    init = None
    if job.input_asset_ids:
        init = get_blob_store().path(access.asset(session, user, job.input_asset_ids[0]).blob_hash)
    prepared = Prepared(experiment, config, dict(job.overrides), datasets, init)
    workdir = get_settings().home.absolute() / "runs" / iteration.id
    if workdir.exists():
        shutil.rmtree(workdir)
    ctx = RunContext(workdir=workdir, inputs=RunInputs([Path(d.root_path) for d in datasets], init),
                     report=report, should_stop=should_stop)
    session.commit()  # hold no transaction open while training
    result = template.run(config, ctx)
    outcome = store_outputs(session, user, iteration, prepared, result)
    summary = result.evaluation
    return Outcome(
        asset_ids=list(outcome.asset_ids.values()),
        eval_ids=[outcome.eval_dataset_id] if outcome.eval_dataset_id else [],
        summary=f"mean return {summary.mean_return:.2f} ± {summary.std_return:.2f}, "
                f"{result.env_steps} env steps",
    )
