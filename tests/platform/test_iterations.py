"""Iterations: sequential indexes never reused, inputs from anywhere the user owns, notes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy.orm import Session

from flywheel.datasets.models import Dataset
from flywheel.errors import InvalidInput, NotFound
from flywheel.platform import assets, experiments, iterations, projects
from flywheel.platform.models import User
from flywheel.platform.schemas import AssetCreate, ExperimentCreate, IterationCreate, IterationNote, ProjectCreate
from flywheel.platform.templates import register_template
from flywheel.store import new_id


class Cfg(BaseModel):
    gamma: float = 0.99


def setup(session: Session, user: User, template: str | None = None):
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    a = experiments.create_experiment(
        session, user, ExperimentCreate(project_id=project.id, name="a", template_id=template)
    )
    b = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="b"))
    session.commit()
    return a, b


def test_indexes_are_sequential_and_never_reused(session: Session, user: User) -> None:
    a, b = setup(session, user)
    first = iterations.create_iteration(session, user, a.id, IterationCreate())
    second = iterations.create_iteration(session, user, a.id, IterationCreate())
    other = iterations.create_iteration(session, user, b.id, IterationCreate())
    assert (first.index, second.index, other.index) == (0, 1, 0)
    session.commit()
    iterations.delete_iteration(session, user, second.id)
    session.commit()
    third = iterations.create_iteration(session, user, a.id, IterationCreate())
    assert third.index == 2
    assert [i.index for i in iterations.list_iterations(session, user, a.id)] == [0, 2]
    assert iterations.get_iteration(session, user, a.id, 2).id == third.id
    with pytest.raises(NotFound):
        iterations.get_iteration(session, user, a.id, 1)


def test_inputs_may_come_from_other_experiments(session: Session, user: User, other_user: User, tmp_path) -> None:
    a, b = setup(session, user)
    (tmp_path / "f").write_bytes(b"weights")
    from_b = assets.upload_asset(session, user, AssetCreate(experiment_id=b.id, name="w"), tmp_path / "f")
    ds = Dataset(id=new_id("dst"), owner_id=user.id, name="demos")
    theirs = Dataset(id=new_id("dst"), owner_id=other_user.id, name="theirs")
    session.add_all([ds, theirs])
    it = iterations.create_iteration(
        session, user, a.id, IterationCreate(input_asset_ids=[from_b.id], input_dataset_ids=[ds.id], notes="try")
    )
    session.commit()
    assert [x.id for x in it.input_assets] == [from_b.id]
    assert [x.id for x in it.input_datasets] == [ds.id]
    with pytest.raises(NotFound):
        iterations.create_iteration(session, user, a.id, IterationCreate(input_dataset_ids=[theirs.id]))
    session.rollback()
    assert a.next_iteration_index == 1


def test_config_overrides_checked_against_template(session: Session, user: User) -> None:
    register_template(session, template_id="cfg", description="t", config_model=Cfg)
    a, b = setup(session, user, template="cfg")
    it = iterations.create_iteration(session, user, a.id, IterationCreate(config_overrides={"gamma": 0.9}))
    assert it.config_overrides == {"gamma": 0.9}
    with pytest.raises(InvalidInput, match=r"config_overrides\.gama"):
        iterations.create_iteration(session, user, a.id, IterationCreate(config_overrides={"gama": 0.9}))
    with pytest.raises(InvalidInput, match="template"):
        iterations.create_iteration(session, user, b.id, IterationCreate(config_overrides={"gamma": 0.9}))


def test_notes_replace_and_append(session: Session, user: User) -> None:
    a, _ = setup(session, user)
    it = iterations.create_iteration(session, user, a.id, IterationCreate(notes="first"))
    iterations.note_iteration(session, user, it.id, IterationNote(notes="second", append=True))
    assert it.notes == "first\nsecond"
    iterations.note_iteration(session, user, it.id, IterationNote(notes="only"))
    assert it.notes == "only"


def test_other_user_sees_no_iterations(session: Session, user: User, other_user: User) -> None:
    a, _ = setup(session, user)
    it = iterations.create_iteration(session, user, a.id, IterationCreate())
    session.commit()
    for call in (
        lambda: iterations.get_iteration(session, other_user, it.id),
        lambda: iterations.create_iteration(session, other_user, a.id, IterationCreate()),
        lambda: iterations.note_iteration(session, other_user, it.id, IterationNote(notes="x")),
        lambda: iterations.delete_iteration(session, other_user, it.id),
    ):
        with pytest.raises(NotFound):
            call()
