"""/api/v1/jobs: submit, list, show, cancel, logs over Server-Sent Events, reconcile; 4xx for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from flywheel.api.app import create_app
from tests.api.conftest import Api, _api_for
from tests.jobs.conftest import running_scheduler, wait_for


@pytest.fixture
def client(jobs_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, session: Session) -> Api:
    return _api_for(client, session, "ada")


@pytest.fixture
def other_api(client: TestClient, session: Session) -> Api:
    return _api_for(client, session, "grace")


def _sleep(api: Api, **config: object) -> dict:
    api.project("jobs") if api.get("/projects/jobs").status_code == 404 else None
    return api.ok(api.post("/jobs", json={"kind": "sleep", "project": "jobs", "experiment": "q",
                                          "overrides": config}), 201)


def test_submit_run_show_list_and_stream_the_logs(api: Api) -> None:
    job = _sleep(api, seconds=0.3, steps=3)
    assert job["status"] == "queued" and job["iteration_index"] == 0
    with running_scheduler(slots=1):
        wait_for(lambda: api.ok(api.get(f"/jobs/{job['id']}"))["status"] == "completed", 60)
    shown = api.ok(api.get(f"/jobs/{job['id']}"))
    assert [e["to_status"] for e in shown["events"]] == ["queued", "provisioning", "running", "completed"]
    assert shown["step"] == 3 and shown["log_asset_id"]
    assert [j["id"] for j in api.ok(api.get("/jobs", params={"status": "completed"}))] == [job["id"]]
    response = api.get(f"/jobs/{job['id']}/logs")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert f"data: job {job['id']} running" in response.text
    assert response.text.rstrip().endswith('event: end\ndata: {"status": "completed"}')


def test_logs_follow_a_running_job_until_it_ends(api: Api) -> None:
    job = _sleep(api, seconds=1.5, steps=3)
    with running_scheduler(slots=1):
        wait_for(lambda: api.ok(api.get(f"/jobs/{job['id']}"))["status"] == "running", 60)
        with api.client.stream("GET", f"/api/v1/jobs/{job['id']}/logs", params={"follow": True},
                               headers=api.headers) as response:
            body = "".join(response.iter_text())
    assert "completed after" in body and body.rstrip().endswith('"completed"}')


def test_cancel_a_queued_job_then_cancelling_again_is_a_conflict(api: Api) -> None:
    job = _sleep(api, seconds=10)
    cancelled = api.ok(api.post(f"/jobs/{job['id']}/cancel"))
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "cancelled by user")
    again = api.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["message"]


def test_another_users_job_is_not_found_everywhere(api: Api, other_api: Api) -> None:
    job = _sleep(api)
    for method, path in [("GET", f"/jobs/{job['id']}"), ("POST", f"/jobs/{job['id']}/cancel"),
                         ("GET", f"/jobs/{job['id']}/logs")]:
        assert other_api.request(method, path).status_code == 404
    assert other_api.ok(other_api.get("/jobs")) == []
    assert other_api.post("/jobs/reconcile", json=[{"job_id": job["id"], "billed_usd": 1}]).status_code == 404


def test_bad_submissions_answer_4xx_naming_the_field(api: Api) -> None:
    api.project("jobs")
    bad_template = api.post("/jobs", json={"template": "nope", "project": "jobs", "experiment": "e"})
    assert bad_template.status_code == 422 and bad_template.json()["field"] == "template"
    bad_gpu = api.post("/jobs", json={"kind": "sleep", "project": "jobs", "experiment": "e", "gpu_type": "tpu"})
    assert bad_gpu.status_code == 422 and "h100" in bad_gpu.json()["allowed"]
    too_dear = api.post("/jobs", json={"kind": "sleep", "project": "jobs", "experiment": "e", "gpu_type": "h100",
                                       "overrides": {"seconds": 86_400}})
    assert too_dear.status_code == 409 and "spend limit $100.00" in too_dear.json()["message"]
    assert api.get("/jobs", params={"status": "sleeping"}).status_code == 422
    assert api.ok(api.get("/jobs")) == []


def test_reconcile_records_the_billed_difference(api: Api) -> None:
    job = _sleep(api)
    api.ok(api.post(f"/jobs/{job['id']}/cancel"))
    [entry] = api.ok(api.post("/jobs/reconcile", json=[{"job_id": job["id"], "billed_usd": 0.05}]))
    assert entry["difference_usd"] == pytest.approx(0.05)
