"""The runner: a template run becomes an iteration with assets and an eval dataset; bad requests do nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.blobs import get_blob_store
from flywheel.datasets.models import Dataset, Episode
from flywheel.datasets.reader import DatasetReader
from flywheel.errors import InvalidInput, NotFound
from flywheel.platform import projects
from flywheel.platform.lineage import lineage
from flywheel.platform.models import Asset, Iteration, User
from flywheel.platform.schemas import ProjectCreate
from flywheel.training.policies import load_policy
from flywheel.training.runner import TrainRequest, train

TINY_PPO = {"total_timesteps": 256, "n_envs": 1, "n_steps": 128, "batch_size": 64, "n_epochs": 1,
            "eval_episodes": 2, "env_kwargs": {"max_steps": 60}}


@pytest.fixture
def project(session: Session, user: User) -> str:
    projects.create_project(session, user, ProjectCreate(name="drive"))
    session.commit()
    return "drive"


def test_train_creates_iteration_assets_and_eval(session: Session, user: User, project: str) -> None:
    outcome = train(session, user, TrainRequest(template="ppo", project=project, experiment="baseline",
                                                overrides=TINY_PPO, notes="tiny"))
    it = session.get(Iteration, outcome.iteration.id)
    assert (it.index, it.status) == (0, "completed") and it.config_overrides == TINY_PPO
    assert "mean return" in it.notes and it.notes.startswith("tiny")
    names = {a.name: a for a in session.scalars(select(Asset).where(Asset.iteration_id == it.id))}
    assert set(names) == {"model.zip", "model.onnx", "config.json", "metrics.jsonl", "tensorboard.tar.gz"}
    assert names["model.zip"].tags == ["checkpoint", "final"]
    blobs = get_blob_store()
    config = json.loads(blobs.read_bytes(names["config.json"].blob_hash))
    assert config["total_timesteps"] == 256 and config["seed"] == 0
    # The stored checkpoint and its ONNX export act the same.
    zip_policy = load_policy(blobs.path(names["model.zip"].blob_hash), fmt="zip")
    onnx_policy = load_policy(blobs.path(names["model.onnx"].blob_hash), fmt="onnx")
    obs = np.random.default_rng(0).normal(size=(5, 13)).astype(np.float32)
    np.testing.assert_allclose(zip_policy.predict(obs, deterministic=True)[0], onnx_policy(obs), atol=1e-5)
    # The evaluation episodes are an eval dataset with provenance, mirrored in the database.
    ev = session.get(Dataset, outcome.eval_dataset_id)
    assert ev.is_eval and ev.generated_by_iteration_id == it.id
    assert DatasetReader(ev.root_path).num_episodes == 2
    assert session.scalar(select(Episode.id).where(Episode.dataset_id == ev.id).limit(1)) is not None
    assert [link.kind for link in lineage(session, user, ev.id).chain] == ["eval", "iteration", "experiment",
                                                                            "project"]
    # A second run is the next iteration of the same experiment.
    again = train(session, user, TrainRequest(template="ppo", project=project, experiment="baseline",
                                              overrides={**TINY_PPO, "seed": 1}))
    assert again.iteration.index == 1 and again.iteration.experiment_id == it.experiment_id


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"template": "ppo2"}, "template"),
        ({"overrides": {"learning_rat": 0.1}}, "config.learning_rat"),
        ({"overrides": {"learning_rate": -1}}, "config.learning_rate"),
        ({"overrides": {"env_id": "flywheel/Nope-v0"}}, "config.env_id"),
    ],
)
def test_bad_requests_are_refused_before_any_work(
    session: Session, user: User, project: str, request_fields: dict, field: str
) -> None:
    fields = {"template": "ppo", "project": project, "experiment": "baseline", **request_fields}
    with pytest.raises(InvalidInput) as caught:
        train(session, user, TrainRequest(**fields))
    assert caught.value.field == field and caught.value.allowed is not None
    session.rollback()
    assert session.scalars(select(Iteration)).all() == []


def test_dataset_that_does_not_fit_the_env_is_refused(session: Session, user: User, project: str) -> None:
    from flywheel.datasets import catalog
    from flywheel.datasets.writer import create_dataset

    dataset_id, root = catalog.new_dataset_folder()
    features = {"observation.state": {"dtype": "float32", "shape": [3], "names": None},
                "action": {"dtype": "float32", "shape": [2], "names": None}}
    with create_dataset(root, features=features, fps=20, robot_type="car") as writer:
        writer.add_frame({"observation.state": np.zeros(3, np.float32), "action": np.zeros(2, np.float32)},
                         task="drive")
        writer.save_episode()
    catalog.register_folder(session, user, dataset_id=dataset_id, root=root, name="wrong-shape")
    session.commit()
    with pytest.raises(InvalidInput, match=r"needs \[13\]") as caught:
        train(session, user, TrainRequest(template="ppo", project=project, experiment="bc",
                                          dataset_ids=["wrong-shape"]))
    assert caught.value.field == "datasets.observation.state"
    session.rollback()
    assert session.scalars(select(Iteration)).all() == []


def test_other_users_project_and_template_mismatch(session: Session, user: User, other_user: User,
                                                   project: str) -> None:
    with pytest.raises(NotFound):
        train(session, other_user, TrainRequest(template="ppo", project=project, experiment="x"))
    session.rollback()
    train(session, user, TrainRequest(template="ppo", project=project, experiment="baseline", overrides=TINY_PPO))
    with pytest.raises(InvalidInput, match="runs template ppo"):
        train(session, user, TrainRequest(template="sac", project=project, experiment="baseline"))


def test_failed_run_marks_the_iteration_failed(session: Session, user: User, project: str) -> None:
    calls = {"n": 0}

    def explode(step: int, metrics: dict[str, float]) -> None:
        calls["n"] += 1
        raise RuntimeError("GPU on fire")

    with pytest.raises(RuntimeError, match="GPU on fire"):
        train(session, user, TrainRequest(template="ppo", project=project, experiment="baseline",
                                          overrides=TINY_PPO), report=explode)
    it = session.scalars(select(Iteration)).one()
    assert it.status == "failed" and "GPU on fire" in it.notes and calls["n"] == 1


def test_discrete_demonstrations_fit_a_bc_config_that_discretizes(session: Session, user: User, project: str) -> None:
    from flywheel.datasets import catalog
    from flywheel.training.demos import record_demos
    from flywheel.training.runner import prepare

    dataset_id, root = catalog.new_dataset_folder()
    record_demos(root, "flywheel/Track-v0", {"max_steps": 20}, episodes=1, discretize=(5, 3))
    catalog.register_folder(session, user, dataset_id=dataset_id, root=root, name="discrete-demos")
    session.commit()
    prepared = prepare(session, user, TrainRequest(template="bc", project=project, experiment="bc-discrete",
                                                   overrides={"discretize": [5, 3]}, dataset_ids=[dataset_id]))
    assert [d.id for d in prepared.datasets] == [dataset_id]
    with pytest.raises(InvalidInput, match="action") as caught:
        prepare(session, user, TrainRequest(template="bc", project=project, experiment="bc-box",
                                            dataset_ids=[dataset_id]))
    assert caught.value.field == "datasets.action"
