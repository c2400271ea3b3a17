"""Provenance through the API: eval -> iteration -> experiment -> project, and eval -> job -> template."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session

from flywheel.datasets.models import Dataset
from flywheel.jobs.models import Job
from flywheel.platform.templates import register_template
from flywheel.store import new_id
from tests.api.conftest import Api, World, assert_error


class SACConfig(BaseModel):
    tau: float = 0.005


def _links(links: list[dict]) -> list[tuple[str, str]]:
    return [(link["kind"], link["id"]) for link in links]


def test_eval_lineage_reaches_project_job_and_template(api: Api, session: Session, world: World) -> None:
    register_template(session, template_id="sac", description="SAC", config_model=SACConfig, git_commit="f00d")
    job = Job(
        id=new_id("job"),
        owner_id=api.user.id,
        experiment_id=world.experiment["id"],
        iteration_index=0,
        template_id="sac",
        status="succeeded",
    )
    session.add(job)
    session.flush()
    evaluation = Dataset(
        id=new_id("dst"),
        owner_id=api.user.id,
        name="sac-eval",
        generated_by_experiment_id=world.experiment["id"],
        generated_by_iteration_id=world.iteration["id"],
        generated_by_job_id=job.id,
    )
    session.add(evaluation)
    session.commit()

    lineage = api.ok(api.get(f"/lineage/{evaluation.id}"))
    assert _links(lineage["chain"]) == [
        ("eval", evaluation.id),
        ("iteration", world.iteration["id"]),
        ("experiment", world.experiment["id"]),
        ("project", world.project["id"]),
    ]
    assert _links(lineage["produced_by"]) == [("job", job.id), ("template", "sac")]
    assert "f00d" in lineage["produced_by"][1]["name"], "the template's code commit is named"


def test_asset_iteration_experiment_and_project_lineage(api: Api, world: World) -> None:
    chain = _links(api.ok(api.get(f"/lineage/{world.asset['id']}"))["chain"])
    assert chain == [
        ("asset", world.asset["id"]),
        ("iteration", world.iteration["id"]),
        ("experiment", world.experiment["id"]),
        ("project", world.project["id"]),
    ]
    assert _links(api.ok(api.get(f"/lineage/{world.iteration['id']}"))["chain"]) == chain[1:]
    assert _links(api.ok(api.get(f"/lineage/{world.experiment['id']}"))["chain"]) == chain[2:]
    assert _links(api.ok(api.get(f"/lineage/{world.project['id']}"))["chain"]) == chain[3:]
    assert api.ok(api.get(f"/lineage/{world.eval_id}"))["produced_by"] == [], "no job recorded"


def test_unknown_kinds_are_422_and_missing_ids_404(api: Api, other_api: Api, world: World) -> None:
    body = assert_error(api.get("/lineage/job_123"), 422, field="id")
    assert "exp_" in str(body["allowed"])
    assert_error(api.get("/lineage/exp_missing"), 404)
    for ident in (world.eval_id, world.asset["id"], world.iteration["id"], world.experiment["id"], world.project["id"]):
        assert_error(other_api.get(f"/lineage/{ident}"), 404)
        for headers in ({}, {"Authorization": "Bearer fw_not-a-key"}):
            assert_error(api.client.get(f"/api/v1/lineage/{ident}", headers=headers), 401)
