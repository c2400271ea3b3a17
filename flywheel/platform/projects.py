"""Projects: create, edit (with showcase videos), list, show, delete (cascading, guarded by running jobs)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.datasets.models import Dataset
from flywheel.errors import Conflict, InvalidInput
from flywheel.jobs.models import ACTIVE_STATUSES, Job
from flywheel.platform import access
from flywheel.platform.assets import release_blobs_after_commit
from flywheel.platform.models import Asset, Experiment, Project, Showcase, User
from flywheel.platform.schemas import SHOWCASE_LIMIT, ProjectCreate, ProjectUpdate
from flywheel.store import new_id, utcnow


def create_project(session: Session, user: User, data: ProjectCreate) -> Project:
    """Create a project (names are unique per user).

    Example:
        >>> create_project(session, user, ProjectCreate(name="look-at"))  # doctest: +SKIP
    """
    _check_name_free(session, user, data.name)
    project = Project(id=new_id("prj"), owner_id=user.id, name=data.name, description=data.description)
    session.add(project)
    session.flush()
    return project


def list_projects(session: Session, user: User) -> list[Project]:
    """The user's projects, oldest first."""
    return list(
        session.scalars(select(Project).where(Project.owner_id == user.id).order_by(Project.created_at, Project.id))
    )


def update_project(session: Session, user: User, ident: str, data: ProjectUpdate) -> Project:
    """Edit name, description and showcase videos (at most five, each from an eval of this project)."""
    project = access.project(session, user, ident)
    if data.name is not None and data.name != project.name:
        _check_name_free(session, user, data.name)
        project.name = data.name
    if data.description is not None:
        project.description = data.description
    if data.showcases is not None:
        if len(data.showcases) > SHOWCASE_LIMIT:
            raise Conflict(
                f"a project shows at most {SHOWCASE_LIMIT} showcase videos; {len(data.showcases)} were given",
                hint="Drop one before adding another.",
            )
        keys = [(ref.eval_id, ref.episode_index) for ref in data.showcases]
        if len(set(keys)) != len(keys):
            raise InvalidInput("the same eval episode is listed twice", field="showcases")
        for ref in data.showcases:
            _check_eval_of_project(session, user, project, ref.eval_id)
        project.showcases.clear()
        session.flush()
        for position, ref in enumerate(data.showcases):
            project.showcases.append(Showcase(eval_id=ref.eval_id, episode_index=ref.episode_index, position=position))
    project.updated_at = utcnow()
    session.flush()
    return project


def running_jobs(session: Session, project: Project) -> list[Job]:
    """The project's jobs that are queued or running."""
    return list(
        session.scalars(
            select(Job)
            .join(Experiment, Experiment.id == Job.experiment_id)
            .where(Experiment.project_id == project.id, Job.status.in_(ACTIVE_STATUSES))
        )
    )


def delete_project(session: Session, user: User, ident: str, *, force: bool = False) -> None:
    """Delete a project and everything in it. Refused while a job of it runs, unless `force` cancels them."""
    project = access.project(session, user, ident)
    active = running_jobs(session, project)
    if active and not force:
        ids = ", ".join(job.id for job in active)
        raise Conflict(
            f"project {project.name!r} has {len(active)} job(s) queued or running ({ids})",
            hint="Wait for them, cancel them, or delete with --force to cancel them.",
        )
    from flywheel.jobs.cancel import cancel  # the jobs capability builds on the platform, not the reverse

    for job in active:
        cancel(session, job, reason="project deleted")
    digests = session.scalars(
        select(Asset.blob_hash)
        .join(Experiment, Experiment.id == Asset.experiment_id)
        .where(Experiment.project_id == project.id)
    ).all()
    release_blobs_after_commit(session, digests)
    session.delete(project)
    session.flush()


def _check_name_free(session: Session, user: User, name: str) -> None:
    clash = session.scalars(select(Project).where(Project.owner_id == user.id, Project.name == name)).first()
    if clash is not None:
        raise Conflict(f"you already have a project named {name!r}", hint="Pick another name.")


def _check_eval_of_project(session: Session, user: User, project: Project, eval_id: str) -> Dataset:
    dataset = access.dataset(session, user, eval_id)
    experiment = session.get(Experiment, dataset.generated_by_experiment_id or "")
    if experiment is None or experiment.project_id != project.id:
        raise InvalidInput(
            f"{eval_id} is not an eval of an experiment of project {project.name!r}",
            field="showcases.eval_id",
            allowed="evals produced by this project's experiments",
        )
    return dataset
