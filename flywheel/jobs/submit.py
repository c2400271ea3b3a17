"""Submit a job: validate everything, estimate its cost, check the spend limit, then queue it.

Nothing is queued unless every check passes: the template, every config key and value, the env, the
input datasets and checkpoint (through the training runner's `prepare`, which runs nothing), the runner,
the GPU type, and the spend limit. The iteration the job will fill is created at once (status `queued`),
so the job knows its index and the iteration knows its job.

Example:
    >>> job = submit(session, user, JobSubmit(template="ppo", project="drive", experiment="baseline",
    ...                                       overrides={"total_timesteps": 20000}))  # doctest: +SKIP
    >>> job.status, job.iteration_index  # doctest: +SKIP
    ('queued', 0)
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, InvalidInput
from flywheel.jobs import cost
from flywheel.jobs.kinds import parse_sleep_config
from flywheel.jobs.logs import log_path
from flywheel.jobs.models import Job, JobEvent
from flywheel.jobs.runners import get_runner
from flywheel.jobs.schemas import JobSubmit
from flywheel.platform import access, experiments, iterations
from flywheel.platform.models import Experiment, Template, User
from flywheel.platform.schemas import ExperimentCreate, IterationCreate
from flywheel.settings import get_settings
from flywheel.store.base import new_id, utcnow


def submit(session: Session, user: User, data: JobSubmit) -> Job:
    """Validate `data`, refuse it if its estimate would cross the user's spend limit, else queue it.

    Raises:
        InvalidInput: a bad template, config key or value, env, dataset, runner or GPU type (names the field).
        NotFound: the project, a dataset or the checkpoint asset is not the user's.
        Conflict: the estimate would cross the spend limit (names the estimate, the spend and the limit).
    """
    settings = get_settings()
    runner = get_runner(data.runner)
    price = cost.price_per_hour(data.gpu_type, spot=data.spot)
    runner.validate(gpu_type=data.gpu_type, spot=data.spot)
    datasets: list[str] = []
    template_commit = ""
    if data.kind == "train":
        experiment, config, datasets, template_commit = _prepare_train(session, user, data)
    else:
        if data.template is not None:
            raise InvalidInput("sleep jobs run no template", field="template", allowed=None)
        if data.dataset_ids or data.init_asset_id:
            raise InvalidInput("sleep jobs take no inputs", field="dataset_ids")
        config = parse_sleep_config(data.overrides).model_dump(mode="json")
        experiment = _experiment(session, user, data.project, data.experiment)
    max_runtime = float(data.max_runtime_s or settings.job_max_runtime_s)
    seconds = cost.estimate_seconds(data.kind, config, steps_per_second=settings.job_steps_per_second,
                                    max_runtime_s=max_runtime)
    estimate = cost.cost(price, seconds=seconds)
    session.refresh(user)
    spent = cost.live_spend(session, user)
    if spent + estimate > user.spend_limit_usd:
        raise Conflict(
            f"the estimated cost ${estimate:.4f} ({seconds:.0f} s of {data.gpu_type} "
            f"{'spot' if data.spot else 'on-demand'} at ${price:.2f}/h) on top of your spend ${spent:.4f} "
            f"would cross your spend limit ${user.spend_limit_usd:.2f}",
            hint="Lower total_timesteps or max_runtime_s, pick a cheaper GPU or spot, or raise your limit.",
        )
    iteration = iterations.create_iteration(
        session, user, experiment.id,
        IterationCreate(notes=data.notes, config_overrides=dict(data.overrides) if data.kind == "train" else {},
                        input_dataset_ids=datasets,
                        input_asset_ids=[data.init_asset_id] if data.init_asset_id else []),
    )
    iteration.status = "queued"
    now = utcnow()
    job = Job(
        id=new_id("job"), owner_id=user.id, experiment_id=experiment.id, iteration_index=iteration.index,
        iteration_id=iteration.id, kind=data.kind, template_id=data.template if data.kind == "train" else None,
        template_commit=template_commit, config=config, overrides=dict(data.overrides),
        input_dataset_ids=datasets, input_asset_ids=[data.init_asset_id] if data.init_asset_id else [],
        notes=data.notes, status="queued", queue_seq=time.time_ns(), runner=data.runner, gpu_type=data.gpu_type,
        spot=data.spot, price_per_hour_usd=price, max_runtime_s=max_runtime, estimated_cost_usd=estimate,
        created_at=now, queued_at=now,
    )
    job.log_path = str(log_path(job.id))
    session.add(job)
    session.flush()
    iteration.job_id = job.id
    session.add(JobEvent(job_id=job.id, at=now, from_status="", to_status="queued",
                         message=f"estimate ${estimate:.4f} for {seconds:.0f} s"))
    session.flush()
    return job


def _prepare_train(session: Session, user: User, data: JobSubmit) -> tuple[Experiment, dict[str, Any], list[str], str]:
    from flywheel.training.runner import TrainRequest, prepare

    if data.template is None:
        raise InvalidInput("a train job needs a template", field="template",
                           hint="`flywheel template list` shows them.")
    prepared = prepare(session, user, TrainRequest(
        template=data.template, project=data.project, experiment=data.experiment, overrides=data.overrides,
        dataset_ids=data.dataset_ids, init_asset_id=data.init_asset_id, notes=data.notes,
    ))
    if data.init_asset_id is not None:
        access.asset(session, user, data.init_asset_id)
    template = session.get(Template, data.template)
    return (prepared.experiment, prepared.config.model_dump(mode="json"), [d.id for d in prepared.datasets],
            template.git_commit if template is not None else "")


def _experiment(session: Session, user: User, project_ident: str, ident: str) -> Experiment:
    project = access.project(session, user, project_ident)
    found = session.scalars(
        select(Experiment).where(Experiment.project_id == project.id)
        .where((Experiment.id == ident) | (Experiment.name == ident)).order_by(Experiment.created_at)
    ).first()
    if found is not None:
        return found
    return experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name=ident))
