"""Iterations through the API: sequential indexes never reused, inputs from other experiments, notes, deletes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from tests.api.conftest import Api, World, assert_error, blob_files, make_dataset


def test_create_list_show_note_delete(api: Api, session: Session, flywheel_home: Path) -> None:
    project = api.project()
    experiment = api.experiment(project["id"])
    other = api.experiment(project["id"], "other")
    foreign_asset = api.upload(other["id"], "teacher.onnx", b"teacher weights")
    dataset_id = make_dataset(session, api)

    first = api.iteration(
        experiment["id"], notes="first try", input_dataset_ids=[dataset_id], input_asset_ids=[foreign_asset["id"]]
    )
    assert (first["index"], first["notes"], first["experiment_id"]) == (0, "first try", experiment["id"])
    assert first["input_dataset_ids"] == [dataset_id]
    assert first["input_asset_ids"] == [foreign_asset["id"]], "inputs may come from another experiment"
    assert (first["status"], first["job_id"], first["output_asset_ids"], first["output_eval_ids"]) == (
        "created",
        None,
        [],
        [],
    )
    second = api.iteration(experiment["id"])
    third = api.iteration(experiment["id"])
    assert [second["index"], third["index"]] == [1, 2]

    listed = api.ok(api.get(f"/experiments/{experiment['id']}/iterations"))
    assert [i["id"] for i in listed] == [first["id"], second["id"], third["id"]]
    assert api.ok(api.get(f"/iterations/{second['id']}")) == second
    assert api.ok(api.get(f"/experiments/{experiment['id']}/iterations/1")) == second
    assert_error(api.get(f"/experiments/{experiment['id']}/iterations/9"), 404)

    noted = api.ok(api.patch(f"/iterations/{first['id']}/notes", json={"notes": "reward hacked", "append": True}))
    assert noted["notes"] == "first try\nreward hacked"
    replaced = api.ok(api.patch(f"/iterations/{first['id']}/notes", json={"notes": "rewritten"}))
    assert replaced["notes"] == "rewritten"

    output = api.upload(experiment["id"], "ckpt.pt", b"third's checkpoint", iteration_id=third["id"])
    assert api.ok(api.get(f"/iterations/{third['id']}"))["output_asset_ids"] == [output["id"]]
    assert len(blob_files(flywheel_home)) == 2
    assert api.delete(f"/iterations/{third['id']}").status_code == 204
    assert_error(api.get(f"/iterations/{third['id']}"), 404)
    assert_error(api.get(f"/assets/{output['id']}"), 404)
    assert len(blob_files(flywheel_home)) == 1, "the deleted output's blob is freed"
    assert api.iteration(experiment["id"])["index"] == 3, "an index is never reused"


def test_bad_bodies_and_indexes_are_422_naming_the_field(api: Api) -> None:
    experiment = api.experiment(api.project()["id"])
    eid = experiment["id"]
    assert_error(api.post(f"/experiments/{eid}/iterations", json={"notes": 3}), 422, field="notes")
    assert_error(
        api.post(f"/experiments/{eid}/iterations", json={"input_asset_ids": [1]}), 422, field="input_asset_ids.0"
    )
    assert_error(
        api.post(f"/experiments/{eid}/iterations", json={"config_overrides": {"lr": 1}}), 422, field="config_overrides"
    )
    assert_error(api.post(f"/experiments/{eid}/iterations", json={"index": 5}), 422, field="index")
    nul_id = {"input_dataset_ids": ["dst_\x00"]}
    assert_error(api.post(f"/experiments/{eid}/iterations", json=nul_id), 422, field="input_dataset_ids")
    assert_error(api.get("/iterations/itr_%00"), 422, field="iteration_id")
    assert_error(api.get(f"/experiments/{eid}/iterations/-1"), 422, field="index")
    assert_error(api.get(f"/experiments/{eid}/iterations/{2**31}"), 422, field="index")
    assert_error(api.get(f"/experiments/{eid}/iterations/first"), 422, field="index")
    iteration = api.iteration(eid)
    assert_error(api.patch(f"/iterations/{iteration['id']}/notes", json={}), 422, field="notes")
    assert_error(api.patch(f"/iterations/{iteration['id']}/notes", json={"notes": "a\x00b"}), 422, field="notes")
    assert api.ok(api.get(f"/experiments/{eid}/iterations")) == [iteration], "refused requests store nothing"
    assert api.ok(api.get(f"/experiments/{eid}"))["next_iteration_index"] == 1


def test_missing_inputs_are_404_and_store_nothing(api: Api, other_api: Api, world: World) -> None:
    eid = world.experiment["id"]
    assert_error(api.post(f"/experiments/{eid}/iterations", json={"input_asset_ids": ["ast_missing"]}), 404)
    assert_error(api.post(f"/experiments/{eid}/iterations", json={"input_dataset_ids": ["dst_missing"]}), 404)
    theirs = other_api.experiment(other_api.project("theirs")["id"])
    their_asset = other_api.upload(theirs["id"], "x.bin", b"theirs")
    assert_error(api.post(f"/experiments/{eid}/iterations", json={"input_asset_ids": [their_asset["id"]]}), 404)
    assert [i["index"] for i in api.ok(api.get(f"/experiments/{eid}/iterations"))] == [0]
    assert api.iteration(eid)["index"] == 1, "a refused create does not consume an index"


def test_requests_without_a_valid_key_are_401(api: Api, world: World) -> None:
    eid, iid = world.experiment["id"], world.iteration["id"]
    endpoints = [
        ("POST", f"/experiments/{eid}/iterations", {"json": {}}),
        ("GET", f"/experiments/{eid}/iterations", {}),
        ("GET", f"/experiments/{eid}/iterations/0", {}),
        ("GET", f"/iterations/{iid}", {}),
        ("PATCH", f"/iterations/{iid}/notes", {"json": {"notes": "x"}}),
        ("DELETE", f"/iterations/{iid}", {}),
    ]
    for method, path, kwargs in endpoints:
        for headers in ({}, {"Authorization": "Bearer fw_not-a-key"}):
            assert_error(api.client.request(method, "/api/v1" + path, headers=headers, **kwargs), 401)
    assert api.ok(api.get(f"/iterations/{iid}"))["notes"] == "first"


def test_another_users_iteration_is_404(api: Api, other_api: Api, world: World) -> None:
    eid, iid = world.experiment["id"], world.iteration["id"]
    theirs = other_api.experiment(other_api.project("theirs")["id"])
    endpoints = [
        ("POST", f"/experiments/{eid}/iterations", {"json": {}}),
        ("POST", f"/experiments/{theirs['id']}/iterations", {"json": {"input_asset_ids": [world.asset["id"]]}}),
        ("POST", f"/experiments/{theirs['id']}/iterations", {"json": {"input_dataset_ids": [world.dataset_id]}}),
        ("GET", f"/experiments/{eid}/iterations", {}),
        ("GET", f"/experiments/{eid}/iterations/0", {}),
        ("GET", f"/iterations/{iid}", {}),
        ("PATCH", f"/iterations/{iid}/notes", {"json": {"notes": "mine now"}}),
        ("DELETE", f"/iterations/{iid}", {}),
    ]
    for method, path, kwargs in endpoints:
        assert_error(other_api.request(method, path, **kwargs), 404)
    assert api.ok(api.get(f"/experiments/{eid}/iterations")) == [api.ok(api.get(f"/iterations/{iid}"))]
    assert api.ok(api.get(f"/iterations/{iid}"))["notes"] == "first", "nothing changed for the owner"
    assert other_api.ok(other_api.get(f"/experiments/{theirs['id']}/iterations")) == []
