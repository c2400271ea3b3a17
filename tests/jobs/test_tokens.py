"""Per-job worker tokens through the real API: a job's token reads its inputs and writes its outputs, and
nothing else. Out of scope: another user's objects and the same user's other jobs' objects are 404; an
operation a job token may never use is 403; an expired, tampered, foreign or ended-job token is 401."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.api.app import API_PREFIX, create_app
from flywheel.datasets.catalog import create_dataset
from flywheel.datasets.schemas import DatasetCreate
from flywheel.errors import IntegrityError, Unauthorized
from flywheel.jobs import tokens
from flywheel.jobs.cancel import cancel_job
from flywheel.jobs.models import Job
from flywheel.platform.assets import upload_asset
from flywheel.platform.models import Asset, User
from flywheel.platform.schemas import AssetCreate
from tests.jobs.conftest import sleep_job

FEATURES = {"action": {"dtype": "float32", "shape": [2]}}


@dataclass
class World:
    """Ada's job (inputs: one dataset, one asset), her second job with an output, and Grace's dataset."""

    job: Job
    other_job: Job
    input_dataset: str
    unused_dataset: str
    input_asset: str
    other_output: str
    graces_dataset: str
    token: str
    api_key: str


@pytest.fixture
def client(jobs_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def world(project: object, session: Session, user: User, other_user: User) -> World:
    from flywheel.platform.users import hash_key

    api_key = "fw_test-key-of-ada"
    user.api_key_hash = hash_key(api_key)
    used = create_dataset(session, user, DatasetCreate(name="demos", features=FEATURES))
    unused = create_dataset(session, user, DatasetCreate(name="private", features=FEATURES))
    graces = create_dataset(session, other_user, DatasetCreate(name="graces", features=FEATURES))
    job = sleep_job(session, user, experiment="mine", seconds=60)
    other = sleep_job(session, user, experiment="theirs", seconds=60)
    checkpoint = upload_asset(session, user, AssetCreate(experiment_id=job.experiment_id, name="init.pt"),
                              [b"initial weights"])
    output = upload_asset(session, user, AssetCreate(experiment_id=other.experiment_id, name="model.pt",
                                                     iteration_id=other.iteration_id), [b"other job's model"])
    job.input_dataset_ids = [used.id]  # the inputs a train job would have named at submission
    job.input_asset_ids = [checkpoint.id]
    session.commit()
    return World(job=job, other_job=other, input_dataset=used.id, unused_dataset=unused.id, input_asset=checkpoint.id,
                 other_output=output.id, graces_dataset=graces.id, token=tokens.issue_for_job(job), api_key=api_key)


def _call(client: TestClient, credential: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}", **kwargs.pop("headers", {})}
    return client.request(method, API_PREFIX + path, headers=headers, **kwargs)


def _upload(client: TestClient, credential: str, **params: str) -> httpx.Response:
    return _call(client, credential, "POST", "/assets", params={"name": "out.bin", **params}, content=b"result",
                 headers={"Content-Type": "application/octet-stream"})


def test_a_job_token_reads_its_inputs_and_writes_into_its_own_iteration(client: TestClient, world: World) -> None:
    token, job = world.token, world.job
    assert _call(client, token, "GET", "/users/me").json()["id"] == job.owner_id
    assert _call(client, token, "GET", f"/datasets/{world.input_dataset}").json()["name"] == "demos"
    assert _call(client, token, "GET", "/datasets/demos").status_code == 200  # by name too
    assert _call(client, token, "GET", f"/assets/{world.input_asset}/download").content == b"initial weights"
    assert _call(client, token, "GET", f"/jobs/{job.id}").json()["status"] == "queued"
    assert _call(client, token, "GET", f"/iterations/{job.iteration_id}").status_code == 200
    created = _upload(client, token, experiment_id=job.experiment_id, iteration_id=job.iteration_id)
    assert created.status_code == 201, created.text
    assert created.json()["iteration_id"] == job.iteration_id
    assert _call(client, token, "GET", f"/assets/{created.json()['id']}").status_code == 200  # its own output


def test_a_job_token_cannot_read_another_users_data(client: TestClient, world: World) -> None:
    response = _call(client, world.token, "GET", f"/datasets/{world.graces_dataset}")
    assert response.status_code == 404 and response.json()["error"] == "NotFound"
    assert _call(client, world.token, "GET", "/datasets/graces").status_code == 404


def test_the_same_users_objects_outside_the_jobs_scope_do_not_exist_for_its_token(
    client: TestClient, world: World
) -> None:
    other = world.other_job
    outside = [("GET", f"/datasets/{world.unused_dataset}"), ("GET", f"/assets/{world.other_output}"),
               ("GET", f"/assets/{world.other_output}/download"), ("GET", f"/jobs/{other.id}"),
               ("GET", f"/jobs/{other.id}/logs?follow=false"), ("GET", f"/iterations/{other.iteration_id}")]
    for method, path in outside:
        assert _call(client, world.api_key, method, path).status_code == 200, path  # they exist: the key sees them
        assert _call(client, world.token, method, path).status_code == 404, path
    refused = _upload(client, world.token, experiment_id=other.experiment_id, iteration_id=other.iteration_id)
    assert refused.status_code == 404
    assert _upload(client, world.token, experiment_id=world.job.experiment_id).status_code == 403  # no iteration


def test_operations_a_job_token_may_never_use_are_forbidden(client: TestClient, world: World, session: Session) -> None:
    job = world.job
    for method, path in [("GET", "/projects"), ("GET", "/datasets"), ("GET", "/jobs"),
                         ("POST", f"/jobs/{job.id}/cancel"), ("DELETE", f"/datasets/{world.input_dataset}"),
                         ("DELETE", f"/assets/{world.input_asset}")]:
        response = _call(client, world.token, method, path)
        assert response.status_code == 403, (method, path, response.text)
        assert job.id in response.json()["message"]
    body = {"kind": "sleep", "project": "jobs", "experiment": "x"}
    submitted = _call(client, world.token, "POST", "/jobs", json=body)
    assert submitted.status_code == 403
    session.expire_all()
    assert session.get(Job, job.id).status == "queued"
    assert session.get(Asset, world.input_asset) is not None
    assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_an_expired_token_is_401(client: TestClient, world: World) -> None:
    past = replace(tokens.scope_of(world.job), expires_at=1)
    response = _call(client, tokens.sign(past), "GET", f"/datasets/{world.input_dataset}")
    assert response.status_code == 401 and "expired" in response.json()["message"]
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(tokens.issue_for_job(world.job, ttl_s=-1))


def test_a_tampered_or_foreign_token_is_401(client: TestClient, world: World, jobs_home: Path) -> None:
    payload, signature = world.token[len(tokens.PREFIX):].split(".")
    widened = replace(tokens.scope_of(world.job), dataset_ids=(world.input_dataset, world.unused_dataset))
    forged_payload = tokens.sign(widened)[len(tokens.PREFIX):].split(".")[0]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in [f"{tokens.PREFIX}{forged_payload}.{signature}",  # widened scope, old signature
                f"{tokens.PREFIX}{payload}.{flipped}", f"{tokens.PREFIX}{payload}", "fwj_", "fwj_x.y"]:
        response = _call(client, bad, "GET", f"/datasets/{world.unused_dataset}")
        assert response.status_code == 401, bad
    tokens.secret_path().unlink()  # another server secret: every old token is foreign
    assert _call(client, world.token, "GET", f"/datasets/{world.input_dataset}").status_code == 401


def test_a_token_dies_with_its_job(client: TestClient, world: World, session: Session, user: User) -> None:
    assert _call(client, world.token, "GET", f"/jobs/{world.job.id}").status_code == 200
    cancel_job(session, user, world.job.id)
    session.commit()
    response = _call(client, world.token, "GET", f"/jobs/{world.job.id}")
    assert response.status_code == 401 and "ended" in response.json()["message"]


def test_the_secret_is_created_once_private_and_refused_when_readable_by_others(jobs_home: Path) -> None:
    first = tokens.load_secret()
    path = tokens.secret_path()
    assert path.is_relative_to(jobs_home) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.load_secret() == first and len(first) == 32
    os.chmod(path, 0o644)
    with pytest.raises(IntegrityError, match="readable by its owner only"):
        tokens.load_secret()


def test_a_token_expires_after_the_jobs_time_limit_plus_the_margin(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_JOB_TOKEN_MARGIN_S", "600")
    scope = tokens.scope_of(world.job, now=1000.0)
    assert scope.expires_at == int(1000 + world.job.max_runtime_s + 600)
    assert (scope.job_id, scope.user_id, scope.iteration_id) == (world.job.id, world.job.owner_id,
                                                                 world.job.iteration_id)
    assert tokens.verify(tokens.sign(scope), now=scope.expires_at - 1) == scope
    with pytest.raises(Unauthorized):
        tokens.verify(tokens.sign(scope), now=scope.expires_at)
