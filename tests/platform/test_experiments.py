"""Experiment trees: create, edit, move, fork, delete, datasets — through the service layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from flywheel.blobs import get_blob_store
from flywheel.datasets.models import Dataset
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.platform import access, assets, experiments, iterations, projects
from flywheel.platform.models import Project, User
from flywheel.platform.schemas import (
    AssetCreate,
    ExperimentCreate,
    ExperimentFork,
    ExperimentUpdate,
    IterationCreate,
    ProjectCreate,
)
from flywheel.platform.templates import register_template
from flywheel.store import new_id


class TinyConfig(BaseModel):
    learning_rate: float = Field(3e-4, gt=0)
    n_steps: int = 128


@pytest.fixture
def project(session: Session, user: User) -> Project:
    created = projects.create_project(session, user, ProjectCreate(name="look-at"))
    session.commit()
    return created


def exp(session: Session, user: User, project: Project, name: str, parent: str | None = None, **kw: object):
    return experiments.create_experiment(
        session, user, ExperimentCreate(project_id=project.id, name=name, parent_id=parent, **kw)
    )


def test_tree_with_children(session: Session, user: User, project: Project) -> None:
    root = exp(session, user, project, "root")
    child = exp(session, user, project, "child", root.id)
    exp(session, user, project, "grandchild", child.id)
    exp(session, user, project, "second-root")
    session.commit()
    trees = experiments.tree(session, user, project.name)
    assert [t.name for t in trees] == ["root", "second-root"]
    assert trees[0].children[0].name == "child"
    assert trees[0].children[0].children[0].name == "grandchild"


def test_cross_project_parent_is_refused(session: Session, user: User, project: Project) -> None:
    other = projects.create_project(session, user, ProjectCreate(name="drive"))
    foreign = exp(session, user, other, "elsewhere")
    with pytest.raises(Conflict, match="another project"):
        exp(session, user, project, "child", foreign.id)


def test_moving_under_own_descendant_is_a_cycle(session: Session, user: User, project: Project) -> None:
    root = exp(session, user, project, "root")
    child = exp(session, user, project, "child", root.id)
    grandchild = exp(session, user, project, "grandchild", child.id)
    session.commit()
    for target in (root, grandchild):
        with pytest.raises(Conflict, match="cycle"):
            experiments.update_experiment(session, user, root.id, ExperimentUpdate(parent_id=target.id))
    session.rollback()
    assert access.experiment(session, user, root.id).parent_id is None
    # A legal move and back to the top.
    experiments.update_experiment(session, user, grandchild.id, ExperimentUpdate(parent_id=root.id))
    assert grandchild.parent_id == root.id
    experiments.update_experiment(session, user, grandchild.id, ExperimentUpdate(make_root=True))
    assert grandchild.parent_id is None


def test_edit_fields(session: Session, user: User, project: Project) -> None:
    e = exp(session, user, project, "ppo")
    experiments.update_experiment(
        session, user, e.id, ExperimentUpdate(name="ppo-2", description="**bold**", git_repo="r", git_commit="abc")
    )
    session.commit()
    again = access.experiment(session, user, e.id)
    assert (again.name, again.description, again.git_repo, again.git_commit) == ("ppo-2", "**bold**", "r", "abc")


def test_template_config_keys_are_checked(session: Session, user: User, project: Project) -> None:
    register_template(session, template_id="tiny", description="test recipe", config_model=TinyConfig)
    e = exp(session, user, project, "ppo", template_id="tiny", template_config={"learning_rate": 1e-3})
    assert e.template_config == {"learning_rate": 1e-3}
    with pytest.raises(InvalidInput, match="lerning_rate") as caught:
        exp(session, user, project, "typo", template_id="tiny", template_config={"lerning_rate": 1e-3})
    assert caught.value.allowed == ["learning_rate", "n_steps"]
    with pytest.raises(NotFound, match="template nope"):
        exp(session, user, project, "x", template_id="nope")


def test_link_and_unlink_datasets(session: Session, user: User, other_user: User, project: Project) -> None:
    ds = Dataset(id=new_id("dst"), owner_id=user.id, name="demos")
    theirs = Dataset(id=new_id("dst"), owner_id=other_user.id, name="theirs")
    session.add_all([ds, theirs])
    e = exp(session, user, project, "bc")
    experiments.link_dataset(session, user, e.id, "demos")
    experiments.link_dataset(session, user, e.id, ds.id)  # idempotent
    assert [d.id for d in e.datasets] == [ds.id]
    with pytest.raises(NotFound):
        experiments.link_dataset(session, user, e.id, theirs.id)
    experiments.unlink_dataset(session, user, e.id, ds.id)
    assert e.datasets == []
    with pytest.raises(NotFound):
        experiments.unlink_dataset(session, user, e.id, ds.id)


def test_fork_from_chosen_iteration_links_assets_without_copying(
    session: Session, user: User, project: Project, tmp_path: Path
) -> None:
    register_template(session, template_id="tiny", description="test recipe", config_model=TinyConfig)
    root = exp(session, user, project, "root", template_id="tiny", template_config={"n_steps": 64}, description="d")
    exp(session, user, project, "child", root.id)
    it0 = iterations.create_iteration(session, user, root.id, IterationCreate(config_overrides={"learning_rate": 1e-2}))
    it1 = iterations.create_iteration(session, user, root.id, IterationCreate())
    (tmp_path / "ckpt0").write_bytes(b"checkpoint zero")
    (tmp_path / "ckpt1").write_bytes(b"checkpoint one")
    a0 = assets.upload_asset(
        session, user, AssetCreate(experiment_id=root.id, name="model.zip", iteration_id=it0.id), tmp_path / "ckpt0"
    )
    assets.upload_asset(
        session, user, AssetCreate(experiment_id=root.id, name="model.zip", iteration_id=it1.id), tmp_path / "ckpt1"
    )
    fork = experiments.fork_experiment(session, user, root.id, ExperimentFork(name="fork", iteration_index=0))
    session.commit()

    assert fork.forked_from_id == root.id and fork.forked_from_iteration_id == it0.id
    assert fork.parent_id == root.parent_id and fork.description == "d"
    assert fork.template_config == {"n_steps": 64, "learning_rate": 1e-2}
    assert fork.next_iteration_index == 0
    linked = assets.list_assets(session, user, experiment_id=fork.id)
    assert [(a.blob_hash, a.linked_from_id) for a in linked] == [(a0.blob_hash, a0.id)]
    blob_files = list(get_blob_store().digests())
    assert len(blob_files) == 2  # two checkpoints, no copy for the fork
    tree = experiments.tree(session, user, project.id)
    fork_node = next(n for n in tree if n.name == "fork")
    assert fork_node.forked_from_iteration_index == 0 and fork_node.children == []  # children are not forked

    with pytest.raises(InvalidInput, match="iteration_index") as caught:
        experiments.fork_experiment(session, user, root.id, ExperimentFork(name="bad", iteration_index=7))
    assert caught.value.allowed == [0, 1]


def test_delete_node_moves_children_up(session: Session, user: User, project: Project) -> None:
    root = exp(session, user, project, "root")
    middle = exp(session, user, project, "middle", root.id)
    leaf = exp(session, user, project, "leaf", middle.id)
    session.commit()
    assert experiments.delete_experiment(session, user, middle.id) == [middle.id]
    session.commit()
    assert access.experiment(session, user, leaf.id).parent_id == root.id


def test_delete_cascade_removes_subtree_and_unreferenced_blobs(
    session: Session, user: User, project: Project, tmp_path: Path
) -> None:
    root = exp(session, user, project, "root")
    middle = exp(session, user, project, "middle", root.id)
    exp(session, user, project, "leaf", middle.id)
    keeper = exp(session, user, project, "keeper")
    (tmp_path / "w").write_bytes(b"weights")
    (tmp_path / "solo").write_bytes(b"only here")
    shared = assets.upload_asset(session, user, AssetCreate(experiment_id=middle.id, name="w"), tmp_path / "w")
    solo = assets.upload_asset(session, user, AssetCreate(experiment_id=middle.id, name="s"), tmp_path / "solo")
    assets.link_asset(session, user, shared.id, experiment_id=keeper.id)
    session.commit()
    shared_hash, solo_hash = shared.blob_hash, solo.blob_hash
    deleted = experiments.delete_experiment(session, user, middle.id, cascade=True)
    session.commit()
    assert len(deleted) == 2
    assert [t.name for t in experiments.tree(session, user, project.id)] == ["root", "keeper"]
    assert experiments.tree(session, user, project.id)[0].children == []
    blobs = get_blob_store()
    assert blobs.exists(shared_hash)  # still used by keeper
    assert not blobs.exists(solo_hash)


def test_other_user_cannot_touch_experiments(session: Session, user: User, other_user: User, project: Project) -> None:
    e = exp(session, user, project, "root")
    session.commit()
    with pytest.raises(NotFound):
        experiments.fork_experiment(session, other_user, e.id, ExperimentFork(name="stolen"))
    with pytest.raises(NotFound):
        experiments.delete_experiment(session, other_user, e.id)
    with pytest.raises(NotFound):
        experiments.list_experiments(session, other_user, project.id)
