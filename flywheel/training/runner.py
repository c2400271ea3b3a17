"""Run a template as an iteration: validate, create the iteration, train, store outputs, register the eval.

This is what `flywheel train` calls (and, in the jobs issue, what a job worker runs). Everything a user
can get wrong is checked before any work starts: the template, every config key and value, the env id,
the input datasets (owned, and matching the env's observation/action spaces) and the init checkpoint.

Outputs become assets of the iteration (tags in brackets): `model.zip` [checkpoint, final], `model.onnx`
[onnx], `config.json` [config], `metrics.jsonl` [metrics], `tensorboard.tar.gz` [tensorboard], and the
recorded evaluation episodes become an eval dataset with provenance (experiment, iteration, job).

Example:
    >>> outcome = train(session, user, TrainRequest(template="ppo", project="drive",
    ...                 experiment="baseline", overrides={"total_timesteps": 20000}))  # doctest: +SKIP
    >>> outcome.iteration.index, outcome.result.evaluation.mean_return  # doctest: +SKIP
    (0, 412.7)
"""

from __future__ import annotations

import io
import tarfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.datasets import catalog
from flywheel.datasets.models import Dataset
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput
from flywheel.platform import access, experiments, iterations
from flywheel.platform.assets import upload_asset
from flywheel.platform.models import Experiment, Iteration, User
from flywheel.platform.schemas import AssetCreate, ExperimentCreate, IterationCreate
from flywheel.settings import get_settings
from flywheel.training.base import RunContext, RunInputs, RunResult, TemplateConfig
from flywheel.training.templates import get_template_impl, parse_config, sync_registry

#: Output file -> asset tags.
OUTPUT_TAGS = {
    "model.zip": ["checkpoint", "final"],
    "model.onnx": ["onnx"],
    "config.json": ["config"],
    "metrics.jsonl": ["metrics"],
    "tensorboard.tar.gz": ["tensorboard"],
}


class TrainRequest(BaseModel):
    """What `flywheel train` asks for."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, max_length=100, description="Template id, e.g. ppo.")
    project: str = Field(min_length=1, max_length=200, description="Project id or name.")
    experiment: str = Field(min_length=1, max_length=200, description="Experiment id or name in the project.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Config values for this iteration.")
    dataset_ids: list[str] = Field(default_factory=list, description="Input datasets (ids or names).")
    init_asset_id: str | None = Field(None, description="A checkpoint asset to start from.")
    notes: str = Field("", max_length=100_000)


@dataclass
class TrainOutcome:
    """What a finished training run left behind."""

    iteration: Iteration
    result: RunResult
    config: TemplateConfig
    asset_ids: dict[str, str] = field(default_factory=dict)
    eval_dataset_id: str | None = None


@dataclass
class Prepared:
    """A validated request: everything needed to run, nothing run yet."""

    experiment: Experiment
    config: TemplateConfig
    overrides: dict[str, Any]
    datasets: list[Dataset]
    init_checkpoint: Path | None


def prepare(session: Session, user: User, request: TrainRequest) -> Prepared:
    """Validate a request completely, creating the experiment if it does not exist yet; runs nothing."""
    template = get_template_impl(request.template)
    sync_registry(session)
    project = access.project(session, user, request.project)
    experiment = _find_experiment(session, project.id, request.experiment)
    if experiment is None:
        experiment = experiments.create_experiment(
            session, user,
            ExperimentCreate(project_id=project.id, name=request.experiment, template_id=template.id),
        )
    elif experiment.template_id not in (None, template.id):
        raise InvalidInput(
            f"experiment {experiment.name!r} runs template {experiment.template_id}, not {template.id}",
            field="template", allowed=[experiment.template_id],
            hint="Fork the experiment or create a new one for another template.",
        )
    experiment.template_id = template.id
    merged = {**experiment.template_config, **request.overrides}
    config = parse_config(template.id, merged)
    datasets = [access.dataset(session, user, ident) for ident in dict.fromkeys(request.dataset_ids)]
    _check_dataset_spaces(config, datasets)
    init_checkpoint = None
    if request.init_asset_id is not None:
        from flywheel.blobs import get_blob_store

        init_checkpoint = get_blob_store().path(access.asset(session, user, request.init_asset_id).blob_hash)
    return Prepared(experiment, config, dict(request.overrides), datasets, init_checkpoint)


def train(
    session: Session,
    user: User,
    request: TrainRequest,
    *,
    report: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainOutcome:
    """Validate, create the iteration, run the template in this process, and store its outputs.

    The iteration is committed as `running` before training starts, then `completed` with its outputs,
    or `failed` with the error in its notes (the exception is re-raised).
    """
    prepared = prepare(session, user, request)
    iteration = iterations.create_iteration(
        session, user, prepared.experiment.id,
        IterationCreate(
            notes=request.notes, config_overrides=prepared.overrides,
            input_dataset_ids=[d.id for d in prepared.datasets],
            input_asset_ids=[request.init_asset_id] if request.init_asset_id else [],
        ),
    )
    iteration.status = "running"
    session.commit()
    workdir = get_settings().home.absolute() / "runs" / iteration.id
    ctx = RunContext(
        workdir=workdir,
        inputs=RunInputs(dataset_roots=[Path(d.root_path) for d in prepared.datasets],
                         init_checkpoint=prepared.init_checkpoint),
        report=report or (lambda step, metrics: None),
        should_stop=should_stop or (lambda: False),
    )
    template = get_template_impl(request.template)
    try:
        result = template.run(prepared.config, ctx)
    except BaseException as exc:
        session.rollback()
        iteration.status = "failed"
        iteration.notes = _append(iteration.notes, f"failed: {type(exc).__name__}: {exc}")
        (workdir / "error.txt").parent.mkdir(parents=True, exist_ok=True)
        (workdir / "error.txt").write_text(traceback.format_exc())
        session.commit()
        raise
    outcome = store_outputs(session, user, iteration, prepared, result)
    session.commit()
    return outcome


def store_outputs(session: Session, user: User, iteration: Iteration, prepared: Prepared,
                  result: RunResult) -> TrainOutcome:
    """Upload a run's files as the iteration's assets and register its evaluation episodes as an eval."""
    workdir = result.checkpoint.parent
    files = {"model.zip": result.checkpoint, "model.onnx": result.onnx, "config.json": workdir / "config.json",
             "metrics.jsonl": workdir / "metrics.jsonl"}
    asset_ids: dict[str, str] = {}
    for name, path in files.items():
        if path.is_file():
            asset = upload_asset(session, user, _asset(iteration, name), path)
            asset_ids[name] = asset.id
    tensorboard = result.extra_files.get("tensorboard")
    if tensorboard is not None and tensorboard.is_dir():
        asset = upload_asset(session, user, _asset(iteration, "tensorboard.tar.gz"), [_tar_gz(tensorboard)])
        asset_ids["tensorboard.tar.gz"] = asset.id
    eval_id = _store_eval(session, user, iteration, prepared.config, result)
    summary = result.evaluation
    iteration.status = "completed"
    iteration.notes = _append(
        iteration.notes,
        f"{prepared.config.env_id}: mean return {summary.mean_return:.2f} ± {summary.std_return:.2f} over "
        f"{len(summary.returns)} episodes, success {summary.success_rate:.0%}; "
        f"{result.env_steps} env steps, {result.env_episodes} episodes",
    )
    session.flush()
    return TrainOutcome(iteration, result, prepared.config, asset_ids, eval_id)


def _store_eval(session: Session, user: User, iteration: Iteration, config: TemplateConfig,
                result: RunResult) -> str | None:
    summary = result.evaluation
    if not summary.episodes:
        return None
    dataset_id, root = catalog.new_dataset_folder()
    with create_dataset(root, features=summary.features, fps=_fps(config.env_id), robot_type=_robot(config)) as w:
        for episode in summary.episodes:
            w.append_episode(episode, source=f"eval:{iteration.id}")
    experiment = session.get(Experiment, iteration.experiment_id)
    name = f"eval-{experiment.name if experiment else iteration.experiment_id}-{iteration.index}-{iteration.id[-6:]}"
    dataset = catalog.register_eval(
        session, user, dataset_id=dataset_id, root=root, name=name, experiment_id=iteration.experiment_id,
        iteration_id=iteration.id, job_id=iteration.job_id,
        description=f"Evaluation of iteration #{iteration.index}: {len(summary.returns)} episodes.",
    )
    return dataset.id


def _check_dataset_spaces(config: TemplateConfig, datasets: list[Dataset]) -> None:
    """Refuse datasets whose observation/action features do not fit the env's spaces."""
    if not datasets:
        return
    from flywheel.training.envs import features_for, make_env

    env = make_env(config.env_id, config.env_kwargs, **_env_wrappers(config))
    try:
        wanted = features_for(env)
    finally:
        env.close()
    for dataset in datasets:
        for key, spec in wanted.items():
            have = dataset.features.get(key)
            if have is None:
                raise InvalidInput(f"dataset {dataset.name} has no feature {key!r}", field=f"datasets.{key}",
                                   allowed=sorted(dataset.features))
            if list(have.get("shape", [])) != list(spec["shape"]):
                raise InvalidInput(
                    f"dataset {dataset.name} has {key} of shape {have.get('shape')}, but {config.env_id} "
                    f"needs {spec['shape']}", field=f"datasets.{key}", allowed=spec["shape"],
                )


def _env_wrappers(config: TemplateConfig) -> dict[str, Any]:
    """The action wrapper a config's datasets are recorded under: DQN's discretisation, or BC's `discretize`."""
    discretize = getattr(config, "discretize", None)
    return {"discretize": tuple(discretize)} if discretize else {}


def _find_experiment(session: Session, project_id: str, ident: str) -> Experiment | None:
    return session.scalars(
        select(Experiment).where(Experiment.project_id == project_id)
        .where((Experiment.id == ident) | (Experiment.name == ident))
        .order_by(Experiment.created_at)
    ).first()


def _asset(iteration: Iteration, name: str) -> AssetCreate:
    return AssetCreate(experiment_id=iteration.experiment_id, iteration_id=iteration.id, name=name,
                       tags=OUTPUT_TAGS[name])


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buffer.getvalue()


def _fps(env_id: str) -> int:
    """The task's control rate, from its class metadata (no env is built for it)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    entry_point = gym.spec(env_id).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    return int(getattr(creator, "metadata", {}).get("render_fps") or 50)


def _robot(config: TemplateConfig) -> str:
    return "reachy_mini" if "Reachy" in config.env_id else "car" if "Track" in config.env_id else "unknown"


def _append(notes: str, line: str) -> str:
    return f"{notes}\n{line}".strip("\n")

