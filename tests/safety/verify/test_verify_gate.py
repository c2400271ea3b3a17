"""The gate refuses anything short of a proof; certificates are saved next to the model and stored as assets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from flywheel.errors import Conflict
from flywheel.platform import experiments, projects
from flywheel.platform.assets import list_assets
from flywheel.platform.models import User
from flywheel.platform.schemas import ExperimentCreate, ProjectCreate
from flywheel.safety.verify.certificate import (
    Certificate,
    load_certificates,
    save_certificates,
    store_certificates,
)
from flywheel.safety.verify.gate import require_proved


def cert(name: str, result: str, model: str = "a" * 64) -> Certificate:
    return Certificate(model_sha256=model, property_name=name, property={}, result=result, methods=["crown"],
                       queries=[], tool_versions={}, seconds=0.0)


def test_gate_names_every_property_not_proved() -> None:
    require_proved([cert("a", "proved"), cert("b", "proved")], ["a", "b"])
    with pytest.raises(Conflict) as err:
        require_proved([cert("a", "proved"), cert("b", "unknown"), cert("c", "refuted")], ["a", "b", "c", "d"])
    message = err.value.message
    assert "b (unknown)" in message and "c (refuted)" in message and "d (no certificate)" in message
    assert "a (" not in message
    with pytest.raises(Conflict, match="a"):  # a proof of another model does not count
        require_proved([cert("a", "proved", model="b" * 64)], ["a"], model_sha256="a" * 64)
    with pytest.raises(Conflict, match="refuted"):  # a counterexample outweighs a proof
        require_proved([cert("a", "proved"), cert("a", "refuted")], ["a"])


def test_certificates_save_and_store(tmp_path: Path, session: Session, user: User) -> None:
    certs = [cert("a", "proved"), cert("b", "refuted")]
    path = save_certificates(certs, tmp_path / "policy.certificate.json")
    assert [c.result for c in load_certificates(path)] == ["proved", "refuted"]
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    experiment = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="e"))
    asset = store_certificates(session, user, certs, experiment_id=experiment.id)
    session.commit()
    assert asset.tags == ["certificate"]
    assert [a.id for a in list_assets(session, user, experiment_id=experiment.id)] == [asset.id]
