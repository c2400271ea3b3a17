"""Provenance: eval → iteration → experiment → project, and eval → job → template."""

from __future__ import annotations

from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput
from flywheel.jobs.models import Job
from flywheel.platform import access
from flywheel.platform.models import Experiment, Iteration, Project, Template, User
from flywheel.platform.schemas import Lineage, LineageLink

PREFIXES = {"dst": "dataset/eval", "ast": "asset", "itr": "iteration", "exp": "experiment", "prj": "project"}


def lineage(session: Session, user: User, ident: str) -> Lineage:
    """Where an object came from, by its id (`dst_…`, `ast_…`, `itr_…`, `exp_…`).

    Example:
        >>> [link.kind for link in lineage(session, user, eval_id).chain]  # doctest: +SKIP
        ['eval', 'iteration', 'experiment', 'project']
    """
    prefix = ident.split("_", 1)[0]
    chain: list[LineageLink] = []
    produced_by: list[LineageLink] = []
    iteration: Iteration | None = None
    experiment: Experiment | None = None
    job_id: str | None = None
    if prefix == "dst":
        dataset = access.dataset(session, user, ident)
        chain.append(LineageLink(kind="eval" if dataset.is_eval else "dataset", id=dataset.id, name=dataset.name))
        iteration = session.get(Iteration, dataset.generated_by_iteration_id or "")
        experiment = session.get(Experiment, dataset.generated_by_experiment_id or "")
        job_id = dataset.generated_by_job_id
    elif prefix == "ast":
        asset = access.asset(session, user, ident)
        chain.append(LineageLink(kind="asset", id=asset.id, name=asset.name))
        iteration = session.get(Iteration, asset.iteration_id or "")
        experiment = session.get(Experiment, asset.experiment_id)
    elif prefix == "itr":
        iteration = access.iteration(session, user, ident)
    elif prefix == "exp":
        experiment = access.experiment(session, user, ident)
    elif prefix == "prj":
        project = access.project(session, user, ident)
        return Lineage(chain=[LineageLink(kind="project", id=project.id, name=project.name)], produced_by=[])
    else:
        raise InvalidInput(f"cannot tell what {ident!r} is", field="id", allowed=[f"{p}_…" for p in PREFIXES])
    if iteration is not None:
        chain.append(LineageLink(kind="iteration", id=iteration.id, name=f"#{iteration.index}"))
        experiment = experiment or session.get(Experiment, iteration.experiment_id)
        job_id = job_id or iteration.job_id
    if experiment is not None:
        chain.append(LineageLink(kind="experiment", id=experiment.id, name=experiment.name))
        project = session.get(Project, experiment.project_id)
        if project is not None:
            chain.append(LineageLink(kind="project", id=project.id, name=project.name))
    job = session.get(Job, job_id) if job_id else None
    if job is not None:
        produced_by.append(LineageLink(kind="job", id=job.id, name=job.status))
        template = session.get(Template, job.template_id or "")
        if template is not None:
            produced_by.append(
                LineageLink(
                    kind="template",
                    id=template.id,
                    name=f"{template.name} v{template.version} @ {template.git_commit or '?'}",
                )
            )
    return Lineage(chain=chain, produced_by=produced_by)
