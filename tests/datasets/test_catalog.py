"""The dataset catalog through the service layer, on SQLite and PostgreSQL; the folder is the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.datasets import catalog
from flywheel.datasets.models import Dataset, Episode
from flywheel.datasets.writer import create_dataset
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.platform import experiments, iterations, projects
from flywheel.platform.models import User
from flywheel.platform.schemas import ExperimentCreate, IterationCreate, ProjectCreate
from flywheel.store import new_id

FEATURES = {"observation.state": {"dtype": "float32", "shape": [2], "names": None},
            "action": {"dtype": "float32", "shape": [1], "names": None}}


def write_folder(root: Path, episodes: int = 3, frames: int = 10, task: str = "reach") -> Path:
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for e in range(episodes):
            for i in range(frames):
                w.add_frame({"observation.state": np.array([e, i], np.float32),
                             "action": np.array([i / frames], np.float32)}, task=task)
            w.save_episode(success=e % 2 == 0)
    return root


def rows(session: Session, dataset: Dataset) -> list[Episode]:
    return list(session.scalars(select(Episode).where(Episode.dataset_id == dataset.id)
                                .order_by(Episode.episode_index)))


def test_new_folder_then_register_mirrors_the_episodes(session: Session, user: User, other_user: User) -> None:
    dataset_id, root = catalog.new_dataset_folder()
    assert root.name == dataset_id and dataset_id.startswith("dst_") and not root.exists()
    write_folder(root)
    ds = catalog.register_folder(session, user, dataset_id=dataset_id, root=root, name="demos", description="d")
    session.commit()
    assert (ds.id, ds.fps, ds.robot_type, ds.is_eval) == (dataset_id, 10, "arm", False)
    assert ds.features == FEATURES
    mirrored = rows(session, ds)
    assert [(r.episode_index, r.total_frames, r.success, r.task) for r in mirrored] == [
        (0, 10, True, "reach"), (1, 10, False, "reach"), (2, 10, True, "reach")]
    with pytest.raises(Conflict, match="demos"):
        catalog.register_folder(session, user, dataset_id=catalog.new_dataset_folder()[0], root=root, name="demos")
    with pytest.raises(Conflict, match="registered already"):
        catalog.register_folder(session, other_user, dataset_id=dataset_id, root=root, name="demos")
    with pytest.raises(InvalidInput, match="name"):
        catalog.register_folder(session, user, dataset_id=catalog.new_dataset_folder()[0], root=root, name="a/b")
    with pytest.raises(NotFound):
        catalog.register_folder(session, user, dataset_id=catalog.new_dataset_folder()[0],
                                root=root.parent / "nothing", name="other")


def test_register_eval_records_provenance_and_checks_it(session: Session, user: User, other_user: User) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    exp = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo"))
    exp2 = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="sac"))
    it = iterations.create_iteration(session, user, exp.id, IterationCreate())
    job = Job(id=new_id("job"), owner_id=user.id, experiment_id=exp.id, iteration_index=0)
    session.add(job)
    session.commit()
    dataset_id, root = catalog.new_dataset_folder()
    write_folder(root, episodes=2)
    with pytest.raises(InvalidInput, match="iteration_id"):
        catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ev", experiment_id=exp2.id,
                              iteration_id=it.id)
    with pytest.raises(NotFound):
        catalog.register_eval(session, other_user, dataset_id=dataset_id, root=root, name="ev",
                              experiment_id=exp.id, iteration_id=it.id)
    with pytest.raises(NotFound, match="job"):
        catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ev", experiment_id=exp.id,
                              iteration_id=it.id, job_id="job_nope")
    ev = catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ppo-it0-eval",
                               experiment_id=exp.id, iteration_id=it.id, job_id=job.id)
    session.commit()
    assert ev.is_eval
    assert (ev.generated_by_experiment_id, ev.generated_by_iteration_id, ev.generated_by_job_id) == (
        exp.id, it.id, job.id)
    assert len(rows(session, ev)) == 2
