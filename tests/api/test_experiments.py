"""Experiments through the API: trees, moves (no cycles, no cross-project parents), forks, datasets, deletes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from sqlalchemy.orm import Session

from flywheel.platform.templates import register_template
from tests.api.conftest import Api, World, assert_error, blob_files, make_dataset


class PPOConfig(BaseModel):
    learning_rate: float = 3e-4
    n_steps: int = 128


def _ppo(session: Session) -> str:
    register_template(session, template_id="ppo", description="PPO", config_model=PPOConfig, git_commit="abc123")
    session.commit()
    return "ppo"


def test_create_show_list_edit(api: Api) -> None:
    project = api.project("look-at")
    root = api.experiment(project["id"], "ppo", description="baseline", git_repo="https://x/y.git", git_commit="abc")
    assert root["parent_id"] is None and root["project_id"] == project["id"]
    assert (root["description"], root["git_repo"], root["git_commit"]) == ("baseline", "https://x/y.git", "abc")
    assert root["next_iteration_index"] == 0
    child = api.experiment("look-at", "ppo-lr", parent_id=root["id"])
    assert child["parent_id"] == root["id"], "the project may be named instead of its id"

    assert api.ok(api.get(f"/experiments/{child['id']}")) == child
    listed = api.ok(api.get(f"/projects/{project['id']}/experiments"))
    assert [e["id"] for e in listed] == [root["id"], child["id"]]
    assert api.ok(api.get("/projects/look-at/experiments")) == listed

    edited = api.ok(api.patch(f"/experiments/{child['id']}", json={"name": "ppo-lr3", "description": "lower lr"}))
    assert (edited["name"], edited["description"], edited["parent_id"]) == ("ppo-lr3", "lower lr", root["id"])


def test_template_config_is_checked_against_the_template(api: Api, session: Session) -> None:
    template = _ppo(session)
    project = api.project()
    experiment = api.experiment(project["id"], template_id=template, template_config={"learning_rate": 1e-3})
    assert experiment["template_config"] == {"learning_rate": 1e-3}

    bad = {"project_id": project["id"], "name": "x", "template_id": template, "template_config": {"lr": 1}}
    body = assert_error(api.post("/experiments", json=bad), 422, field="template_config.lr")
    assert "learning_rate" in str(body["allowed"]), "the allowed keys are named"
    no_template = {"project_id": project["id"], "name": "x", "template_config": {"learning_rate": 1}}
    assert_error(api.post("/experiments", json=no_template), 422, field="template_config")
    nan = b'{"learning_rate": NaN}'
    response = api.patch(
        f"/experiments/{experiment['id']}",
        content=b'{"template_config": ' + nan + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 422, field="template_config")
    unknown = {"project_id": project["id"], "name": "x", "template_id": "nope"}
    assert "ppo" in assert_error(api.post("/experiments", json=unknown), 404)["hint"]
    assert len(api.ok(api.get(f"/projects/{project['id']}/experiments"))) == 1, "refused creates store nothing"


def test_bad_bodies_are_422_naming_the_field(api: Api) -> None:
    project = api.project()
    assert_error(api.post("/experiments", json={"name": "x"}), 422, field="project_id")
    assert_error(api.post("/experiments", json={"project_id": project["id"], "name": ""}), 422, field="name")
    body = {"project_id": project["id"], "name": "x", "dataset_ids": "dst_1"}
    assert_error(api.post("/experiments", json=body), 422, field="dataset_ids")
    root = api.experiment(project["id"])
    assert_error(
        api.patch(f"/experiments/{root['id']}", json={"name": None, "git_commit": "x" * 65}), 422, field="git_commit"
    )
    assert_error(
        api.patch(f"/experiments/{root['id']}", json={"make_root": True, "parent_id": root["id"]}),
        422,
        field="parent_id",
    )
    assert_error(
        api.post(f"/experiments/{root['id']}/fork", json={"name": "f", "iteration_index": -1}),
        422,
        field="iteration_index",
    )


def test_moves_refuse_cycles(api: Api) -> None:
    project = api.project()
    root = api.experiment(project["id"], "root")
    child = api.experiment(project["id"], "child", parent_id=root["id"])
    grandchild = api.experiment(project["id"], "grandchild", parent_id=child["id"])

    for new_parent in (grandchild["id"], child["id"], root["id"]):
        body = assert_error(api.patch(f"/experiments/{root['id']}", json={"parent_id": new_parent}), 409)
        assert "cycle" in body["message"]
    assert api.ok(api.get(f"/experiments/{root['id']}"))["parent_id"] is None, "a refused move changes nothing"

    moved = api.ok(api.patch(f"/experiments/{grandchild['id']}", json={"parent_id": root["id"]}))
    assert moved["parent_id"] == root["id"]
    assert api.ok(api.patch(f"/experiments/{grandchild['id']}", json={"make_root": True}))["parent_id"] is None


def test_parents_must_be_in_the_same_project(api: Api) -> None:
    here = api.project("here")
    there = api.project("there")
    local = api.experiment(here["id"], "local")
    remote = api.experiment(there["id"], "remote")

    body = {"project_id": here["id"], "name": "x", "parent_id": remote["id"]}
    assert "another project" in assert_error(api.post("/experiments", json=body), 409)["message"]
    assert_error(api.patch(f"/experiments/{local['id']}", json={"parent_id": remote["id"]}), 409)
    assert_error(api.post(f"/experiments/{local['id']}/fork", json={"name": "f", "parent_id": remote["id"]}), 409)
    assert api.ok(api.get(f"/experiments/{local['id']}"))["parent_id"] is None
    assert len(api.ok(api.get(f"/projects/{here['id']}/experiments"))) == 1


def test_fork_from_a_chosen_iteration_shares_blobs(api: Api, session: Session, flywheel_home: Path) -> None:
    template = _ppo(session)
    project = api.project()
    source = api.experiment(project["id"], "ppo", description="the baseline", template_id=template)
    dataset_id = make_dataset(session, api)
    api.ok(api.put(f"/experiments/{source['id']}/datasets/{dataset_id}"))
    shared = api.upload(source["id"], "config.yaml", b"lr: 3e-4", tags=["config"])
    first = api.iteration(source["id"], config_overrides={"learning_rate": 1e-3})
    api.upload(source["id"], "ckpt-0.pt", b"checkpoint 0", iteration_id=first["id"])
    second = api.iteration(source["id"], config_overrides={"learning_rate": 1e-4})
    api.upload(source["id"], "ckpt-1.pt", b"checkpoint 1", iteration_id=second["id"])
    child = api.experiment(project["id"], "child-of-source", parent_id=source["id"])
    files_before = blob_files(flywheel_home)

    fork = api.ok(api.post(f"/experiments/{source['id']}/fork", json={"name": "ppo-b", "iteration_index": 0}), 201)
    assert fork["forked_from_id"] == source["id"]
    assert fork["forked_from_iteration_id"] == first["id"]
    assert fork["parent_id"] == source["parent_id"], "beside the source by default"
    assert fork["next_iteration_index"] == 0
    assert fork["description"] == "the baseline"
    assert fork["template_config"] == {"learning_rate": 1e-3}, "the chosen iteration's overrides applied"
    assert fork["dataset_ids"] == [dataset_id]

    linked = api.ok(api.get("/assets", params={"experiment_id": fork["id"]}))
    assert sorted(a["name"] for a in linked) == ["ckpt-0.pt", "config.yaml"]
    by_name = {a["name"]: a for a in linked}
    assert by_name["config.yaml"]["blob_hash"] == shared["blob_hash"]
    assert by_name["config.yaml"]["linked_from_id"] == shared["id"]
    assert blob_files(flywheel_home) == files_before, "a fork links: not one byte copied"
    assert api.ok(api.get(f"/experiments/{fork['id']}/iterations")) == []

    tree = api.ok(api.get(f"/projects/{project['id']}/tree"))
    roots = {node["name"]: node for node in tree}
    assert set(roots) == {"ppo", "ppo-b"}, "children are not forked"
    assert [c["id"] for c in roots["ppo"]["children"]] == [child["id"]]
    assert roots["ppo-b"]["children"] == []
    assert roots["ppo-b"]["forked_from_iteration_index"] == 0
    assert (roots["ppo"]["iterations"], roots["ppo"]["assets"]) == (2, 3)

    latest = api.ok(api.post(f"/experiments/{source['id']}/fork", json={"name": "ppo-c"}), 201)
    assert latest["forked_from_iteration_id"] == second["id"], "default: the latest iteration"
    under = api.ok(api.post(f"/experiments/{source['id']}/fork", json={"name": "d", "parent_id": child["id"]}), 201)
    assert under["parent_id"] == child["id"]

    body = assert_error(api.post(f"/experiments/{source['id']}/fork", json={"name": "x", "iteration_index": 7}), 422)
    assert body["field"] == "iteration_index" and body["allowed"] == [0, 1]


def test_link_and_unlink_datasets(api: Api, other_api: Api, session: Session) -> None:
    project = api.project()
    experiment = api.experiment(project["id"])
    dataset_id = make_dataset(session, api, "demos")

    linked = api.ok(api.put(f"/experiments/{experiment['id']}/datasets/{dataset_id}"))
    assert linked["dataset_ids"] == [dataset_id]
    again = api.ok(api.put(f"/experiments/{experiment['id']}/datasets/demos"))
    assert again["dataset_ids"] == [dataset_id], "linking is idempotent, by id or name"

    assert api.delete(f"/experiments/{experiment['id']}/datasets/{dataset_id}").status_code == 204
    assert api.ok(api.get(f"/experiments/{experiment['id']}"))["dataset_ids"] == []
    assert_error(api.delete(f"/experiments/{experiment['id']}/datasets/{dataset_id}"), 404)

    theirs = make_dataset(session, other_api, "their-demos")
    assert_error(api.put(f"/experiments/{experiment['id']}/datasets/{theirs}"), 404)
    assert_error(api.put(f"/experiments/{experiment['id']}/datasets/dst_missing"), 404)


def test_delete_moves_children_up_or_cascades(api: Api) -> None:
    project = api.project()
    root = api.experiment(project["id"], "root")
    middle = api.experiment(project["id"], "middle", parent_id=root["id"])
    leaf = api.experiment(project["id"], "leaf", parent_id=middle["id"])

    assert api.delete(f"/experiments/{middle['id']}").status_code == 204
    assert_error(api.get(f"/experiments/{middle['id']}"), 404)
    assert api.ok(api.get(f"/experiments/{leaf['id']}"))["parent_id"] == root["id"], "children move up"

    assert api.delete(f"/experiments/{root['id']}", params={"cascade": "true"}).status_code == 204
    for gone in (root, leaf):
        assert_error(api.get(f"/experiments/{gone['id']}"), 404)
    assert api.ok(api.get(f"/projects/{project['id']}/tree")) == []
    assert_error(api.delete(f"/experiments/{root['id']}", params={"cascade": "maybe"}), 422, field="cascade")


def test_delete_keeps_blobs_a_fork_still_uses(api: Api, flywheel_home: Path) -> None:
    project = api.project()
    source = api.experiment(project["id"], "source")
    shared = api.upload(source["id"], "model.onnx", b"shared weights")
    fork = api.ok(api.post(f"/experiments/{source['id']}/fork", json={"name": "fork"}), 201)
    api.upload(source["id"], "scratch.bin", b"only in the source, uploaded after the fork")
    assert len(blob_files(flywheel_home)) == 2

    assert api.delete(f"/experiments/{source['id']}").status_code == 204
    assert len(blob_files(flywheel_home)) == 1, "the unshared blob goes once the deletion is committed"
    kept = api.ok(api.get("/assets", params={"experiment_id": fork["id"]}))
    assert [a["name"] for a in kept] == ["model.onnx"]
    download = api.get(f"/assets/{kept[0]['id']}/download")
    assert download.status_code == 200 and download.content == b"shared weights"
    assert kept[0]["blob_hash"] == shared["blob_hash"]


def test_requests_without_a_valid_key_are_401(api: Api, world: World) -> None:
    eid, pid, did = world.experiment["id"], world.project["id"], world.dataset_id
    endpoints = [
        ("POST", "/experiments", {"json": {"project_id": pid, "name": "x"}}),
        ("GET", f"/projects/{pid}/experiments", {}),
        ("GET", f"/projects/{pid}/tree", {}),
        ("GET", f"/experiments/{eid}", {}),
        ("PATCH", f"/experiments/{eid}", {"json": {"name": "x"}}),
        ("POST", f"/experiments/{eid}/fork", {"json": {"name": "x"}}),
        ("PUT", f"/experiments/{eid}/datasets/{did}", {}),
        ("DELETE", f"/experiments/{eid}/datasets/{did}", {}),
        ("DELETE", f"/experiments/{eid}", {}),
    ]
    for method, path, kwargs in endpoints:
        for headers in ({}, {"Authorization": "Bearer fw_not-a-key"}):
            assert_error(api.client.request(method, "/api/v1" + path, headers=headers, **kwargs), 401)
    assert api.ok(api.get(f"/experiments/{eid}"))["dataset_ids"] == [did]


def test_another_users_experiment_is_404(api: Api, other_api: Api, world: World, session: Session) -> None:
    eid, pid = world.experiment["id"], world.project["id"]
    theirs = other_api.project("theirs")
    their_dataset = make_dataset(session, other_api, "their-demos")
    their_experiment = other_api.experiment(theirs["id"])
    endpoints = [
        ("POST", "/experiments", {"json": {"project_id": pid, "name": "x"}}),
        ("POST", "/experiments", {"json": {"project_id": theirs["id"], "name": "x", "parent_id": eid}}),
        ("GET", f"/projects/{pid}/experiments", {}),
        ("GET", f"/projects/{pid}/tree", {}),
        ("GET", f"/experiments/{eid}", {}),
        ("PATCH", f"/experiments/{eid}", {"json": {"name": "x"}}),
        ("PATCH", f"/experiments/{their_experiment['id']}", {"json": {"parent_id": eid}}),
        ("POST", f"/experiments/{eid}/fork", {"json": {"name": "x"}}),
        ("PUT", f"/experiments/{eid}/datasets/{their_dataset}", {}),
        ("PUT", f"/experiments/{their_experiment['id']}/datasets/{world.dataset_id}", {}),
        ("DELETE", f"/experiments/{eid}/datasets/{world.dataset_id}", {}),
        ("DELETE", f"/experiments/{eid}", {"params": {"cascade": "true"}}),
    ]
    before = api.ok(api.get(f"/projects/{pid}/experiments"))
    for method, path, kwargs in endpoints:
        assert_error(other_api.request(method, path, **kwargs), 404)
    assert api.ok(api.get(f"/projects/{pid}/experiments")) == before, "nothing changed for the owner"
    assert len(other_api.ok(other_api.get(f"/projects/{theirs['id']}/experiments"))) == 1
