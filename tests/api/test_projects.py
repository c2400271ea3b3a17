"""Projects through the API: create, list, show, edit (showcases), delete; 401, 404 and 409/422 answers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.jobs.models import Job
from flywheel.store import new_id
from tests.api.conftest import Api, World, assert_error, blob_files, make_eval


def test_create_list_show_edit_delete(api: Api) -> None:
    created = api.project("look-at", description="# Look at the target")
    assert created["name"] == "look-at"
    assert created["description"] == "# Look at the target"
    assert created["showcases"] == []
    assert created["id"].startswith("prj_")
    api.project("drive")

    assert [p["name"] for p in api.ok(api.get("/projects"))] == ["look-at", "drive"]
    assert api.ok(api.get(f"/projects/{created['id']}"))["name"] == "look-at"
    assert api.ok(api.get("/projects/look-at"))["id"] == created["id"], "a project is found by name too"

    edited = api.ok(api.patch("/projects/look-at", json={"name": "look-at-v2", "description": "new"}))
    assert (edited["name"], edited["description"]) == ("look-at-v2", "new")
    assert api.ok(api.get(f"/projects/{created['id']}"))["name"] == "look-at-v2"

    response = api.delete(f"/projects/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get(f"/projects/{created['id']}"), 404)
    assert [p["name"] for p in api.ok(api.get("/projects"))] == ["drive"]


def test_duplicate_name_is_a_conflict(api: Api) -> None:
    api.project("look-at")
    assert_error(api.post("/projects", json={"name": "look-at"}), 409)
    other = api.project("drive")
    assert_error(api.patch(f"/projects/{other['id']}", json={"name": "look-at"}), 409)
    assert api.ok(api.get(f"/projects/{other['id']}"))["name"] == "drive", "a refused edit changes nothing"


def test_users_may_reuse_each_others_names(api: Api, other_api: Api) -> None:
    api.project("look-at")
    assert other_api.project("look-at")["name"] == "look-at"
    assert len(other_api.ok(other_api.get("/projects"))) == 1


def test_bad_create_bodies_are_422_naming_the_field(api: Api) -> None:
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "ok", "description": 5}, "description"),
        ({"name": "ok", "description": "nul \x00 inside"}, "description"),
        ({"name": "ok", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        assert_error(api.post("/projects", json=body), 422, field=field)
    response = api.post("/projects", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 422, field="body")
    assert api.ok(api.get("/projects")) == [], "a refused create stores nothing"


def test_showcases_at_most_five_from_own_evals(api: Api, session: Session) -> None:
    project = api.project("look-at")
    experiment = api.experiment(project["id"])
    iteration = api.iteration(experiment["id"])
    evals = [make_eval(session, api, experiment["id"], iteration["id"], f"eval-{i}") for i in range(6)]

    five = [{"eval_id": e, "episode_index": i} for i, e in enumerate(evals[:5])]
    shown = api.ok(api.patch(f"/projects/{project['id']}", json={"showcases": five}))
    assert [(s["eval_id"], s["position"]) for s in shown["showcases"]] == [(e, i) for i, e in enumerate(evals[:5])]

    six = [*five, {"eval_id": evals[5]}]
    body = assert_error(api.patch(f"/projects/{project['id']}", json={"showcases": six}), 409)
    assert "5" in body["message"]
    assert len(api.ok(api.get(f"/projects/{project['id']}"))["showcases"]) == 5, "the sixth was not added"

    twice = [five[0], five[0]]
    assert_error(api.patch(f"/projects/{project['id']}", json={"showcases": twice}), 422, field="showcases")
    bad_index = [{"eval_id": evals[0], "episode_index": -1}]
    response = api.patch(f"/projects/{project['id']}", json={"showcases": bad_index})
    assert_error(response, 422, field="showcases.0.episode_index")

    cleared = api.ok(api.patch(f"/projects/{project['id']}", json={"showcases": []}))
    assert cleared["showcases"] == []


def test_showcase_from_another_projects_eval_is_refused(api: Api, session: Session) -> None:
    mine = api.project("look-at")
    other = api.project("drive")
    experiment = api.experiment(other["id"])
    eval_id = make_eval(session, api, experiment["id"], api.iteration(experiment["id"])["id"])
    response = api.patch(f"/projects/{mine['id']}", json={"showcases": [{"eval_id": eval_id}]})
    assert_error(response, 422, field="showcases.eval_id")


def test_delete_cascades_and_frees_blobs(api: Api, flywheel_home) -> None:
    project = api.project("look-at")
    experiment = api.experiment(project["id"])
    iteration = api.iteration(experiment["id"])
    asset = api.upload(experiment["id"], "model.onnx", b"only here", iteration_id=iteration["id"])
    assert len(blob_files(flywheel_home)) == 1

    assert api.delete(f"/projects/{project['id']}").status_code == 204
    for path in (f"/experiments/{experiment['id']}", f"/iterations/{iteration['id']}", f"/assets/{asset['id']}"):
        assert_error(api.get(path), 404)
    assert blob_files(flywheel_home) == [], "the blob nothing references any more is deleted after commit"


def test_delete_with_running_job_needs_force(api: Api, session: Session) -> None:
    project = api.project("look-at")
    experiment = api.experiment(project["id"])
    job = Job(id=new_id("job"), owner_id=api.user.id, experiment_id=experiment["id"], iteration_index=0)
    job.status = "running"
    session.add(job)
    session.commit()
    job_id = job.id

    body = assert_error(api.delete(f"/projects/{project['id']}"), 409)
    assert job_id in body["message"] and body["hint"]
    assert api.ok(api.get(f"/projects/{project['id']}"))["id"] == project["id"]

    assert api.delete(f"/projects/{project['id']}", params={"force": "true"}).status_code == 204
    assert_error(api.get(f"/projects/{project['id']}"), 404)
    session.expunge_all()
    assert session.scalars(select(Job).where(Job.id == job_id)).first() is None, "jobs go with their project"


def test_requests_without_a_valid_key_are_401(api: Api, world: World) -> None:
    pid = world.project["id"]
    endpoints = [
        ("POST", "/projects", {"json": {"name": "x"}}),
        ("GET", "/projects", {}),
        ("GET", f"/projects/{pid}", {}),
        ("PATCH", f"/projects/{pid}", {"json": {"name": "x"}}),
        ("DELETE", f"/projects/{pid}", {}),
    ]
    for method, path, kwargs in endpoints:
        for headers in ({}, {"Authorization": "Bearer fw_not-a-key"}, {"Authorization": f"Basic {api.key}"}):
            response = api.client.request(method, "/api/v1" + path, headers=headers, **kwargs)
            assert_error(response, 401)
    assert api.ok(api.get(f"/projects/{pid}"))["name"] == "look-at"


def test_another_users_project_is_404(api: Api, other_api: Api, world: World) -> None:
    pid = world.project["id"]
    for ident in (pid, "look-at"):
        assert_error(other_api.get(f"/projects/{ident}"), 404)
        assert_error(other_api.patch(f"/projects/{ident}", json={"name": "mine"}), 404)
        assert_error(other_api.delete(f"/projects/{ident}"), 404)
    assert other_api.ok(other_api.get("/projects")) == []
    assert api.ok(api.get(f"/projects/{pid}"))["name"] == "look-at", "nothing changed for the owner"
