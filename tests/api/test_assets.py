"""Assets through the API: streamed upload and download, one copy per content, tags, deletes that keep shared blobs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.api.conftest import Api, World, assert_error, blob_files

BIG = bytes(range(256)) * (5 * 4096 + 17)  # ~5 MiB, not a multiple of the 1 MiB chunk


def test_upload_download_round_trip(api: Api, flywheel_home: Path) -> None:
    experiment = api.experiment(api.project()["id"])
    iteration = api.iteration(experiment["id"])
    asset = api.upload(experiment["id"], "model.onnx", BIG, iteration_id=iteration["id"], tags=["checkpoint", "best"])
    digest = hashlib.sha256(BIG).hexdigest()
    assert (asset["blob_hash"], asset["size"], asset["name"]) == (digest, len(BIG), "model.onnx")
    assert (asset["experiment_id"], asset["iteration_id"]) == (experiment["id"], iteration["id"])
    assert asset["tags"] == ["best", "checkpoint"]
    assert [p.parent.name + p.name for p in blob_files(flywheel_home)] == [digest]

    response = api.get(f"/assets/{asset['id']}/download")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(BIG))
    assert response.headers["etag"] == f'"{digest}"'
    assert response.headers["content-disposition"] == 'attachment; filename="model.onnx"'
    assert api.ok(api.get(f"/assets/{asset['id']}")) == asset
    assert api.ok(api.get(f"/iterations/{iteration['id']}"))["output_asset_ids"] == [asset["id"]]


def test_uploads_stream_in_chunks_and_odd_names_survive(api: Api) -> None:
    experiment = api.experiment(api.project()["id"])
    chunks = [BIG[i : i + 65536] for i in range(0, len(BIG), 65536)]
    response = api.post(
        "/assets",
        params={"experiment_id": experiment["id"], "name": 'politique "πολιτική".bin'},
        content=iter(chunks),  # sent chunked, with no Content-Length
        headers={"Content-Type": "application/octet-stream"},
    )
    asset = api.ok(response, 201)
    assert asset["size"] == len(BIG) and asset["blob_hash"] == hashlib.sha256(BIG).hexdigest()
    download = api.get(f"/assets/{asset['id']}/download")
    assert download.content == BIG
    assert download.headers["content-disposition"].startswith("attachment; filename*=utf-8''politique%20%22")

    empty = api.upload(experiment["id"], "empty", b"")
    assert empty["size"] == 0 and api.get(f"/assets/{empty['id']}/download").content == b""


def test_same_bytes_are_stored_once(api: Api, flywheel_home: Path) -> None:
    project = api.project()
    one = api.experiment(project["id"], "one")
    two = api.experiment(project["id"], "two")
    first = api.upload(one["id"], "a.bin", b"same bytes")
    second = api.upload(two["id"], "b.bin", b"same bytes")
    assert first["id"] != second["id"] and first["blob_hash"] == second["blob_hash"]
    assert len(blob_files(flywheel_home)) == 1


def test_list_filters_by_experiment_iteration_and_tag(api: Api) -> None:
    experiment = api.experiment(api.project()["id"])
    iteration = api.iteration(experiment["id"])
    config = api.upload(experiment["id"], "config.yaml", b"cfg", tags=["config"])
    ckpt = api.upload(experiment["id"], "ckpt.pt", b"ckpt", iteration_id=iteration["id"], tags=["checkpoint"])

    def ids(**params: str) -> list[str]:
        return [a["id"] for a in api.ok(api.get("/assets", params=params))]

    assert ids(experiment_id=experiment["id"]) == [config["id"], ckpt["id"]]
    assert ids(iteration_id=iteration["id"]) == [ckpt["id"]]
    assert ids(experiment_id=experiment["id"], tag="config") == [config["id"]]
    assert ids(experiment_id=experiment["id"], tag="missing") == []
    assert_error(api.get("/assets"), 422, field="experiment_id")


def test_tag_and_untag(api: Api) -> None:
    experiment = api.experiment(api.project()["id"])
    asset = api.upload(experiment["id"], "ckpt.pt", b"ckpt", tags=["checkpoint"])
    tagged = api.ok(api.post(f"/assets/{asset['id']}/tags", json={"tag": "best"}))
    assert tagged["tags"] == ["best", "checkpoint"]
    assert api.ok(api.post(f"/assets/{asset['id']}/tags", json={"tag": "best"}))["tags"] == ["best", "checkpoint"]

    assert api.delete(f"/assets/{asset['id']}/tags/checkpoint").status_code == 204
    assert api.delete(f"/assets/{asset['id']}/tags/never-there").status_code == 204, "untagging is idempotent"
    assert api.ok(api.get(f"/assets/{asset['id']}"))["tags"] == ["best"]

    assert_error(api.post(f"/assets/{asset['id']}/tags", json={"tag": "has space"}), 422, field="tag")
    assert_error(api.post(f"/assets/{asset['id']}/tags", json={}), 422, field="tag")
    assert api.ok(api.get(f"/assets/{asset['id']}"))["tags"] == ["best"]


def test_delete_frees_the_blob_only_when_unreferenced(api: Api, flywheel_home: Path) -> None:
    project = api.project()
    one = api.experiment(project["id"], "one")
    two = api.experiment(project["id"], "two")
    first = api.upload(one["id"], "a.bin", b"shared")
    second = api.upload(two["id"], "b.bin", b"shared")
    alone = api.upload(two["id"], "c.bin", b"alone")
    assert len(blob_files(flywheel_home)) == 2

    assert api.delete(f"/assets/{first['id']}").status_code == 204
    assert_error(api.get(f"/assets/{first['id']}"), 404)
    assert len(blob_files(flywheel_home)) == 2, "another asset still uses the blob"
    assert api.get(f"/assets/{second['id']}/download").content == b"shared"

    assert api.delete(f"/assets/{alone['id']}").status_code == 204
    assert api.delete(f"/assets/{second['id']}").status_code == 204
    assert blob_files(flywheel_home) == [], "freed once the deletion is committed, before the answer"
    assert_error(api.delete(f"/assets/{second['id']}"), 404)


def test_bad_uploads_are_refused_and_store_nothing(api: Api, flywheel_home: Path) -> None:
    experiment = api.experiment(api.project()["id"])
    other = api.experiment(api.project("other")["id"])
    iteration_elsewhere = api.iteration(other["id"])
    eid = experiment["id"]
    octet = {"Content-Type": "application/octet-stream"}
    cases = [
        ({"name": "x"}, "experiment_id"),
        ({"experiment_id": eid}, "name"),
        ({"experiment_id": eid, "name": "x", "tags": "not a tag"}, "tags"),
        ({"experiment_id": eid, "name": "x", "size": "12"}, "size"),
        ({"experiment_id": eid, "name": "x", "iteration_id": iteration_elsewhere["id"]}, "iteration_id"),
    ]
    for params, field in cases:
        assert_error(api.post("/assets", params=params, content=b"payload", headers=octet), 422, field=field)
    form = api.post("/assets", params={"experiment_id": eid, "name": "x"}, files={"file": b"payload"})
    assert "application/octet-stream" in assert_error(form, 415)["message"]
    assert_error(
        api.post("/assets", params={"experiment_id": "exp_missing", "name": "x"}, content=b"p", headers=octet), 404
    )
    assert api.ok(api.get("/assets", params={"experiment_id": eid})) == []
    assert blob_files(flywheel_home) == [], "no blob was kept for a refused upload"


def test_requests_without_a_valid_key_are_401(api: Api, world: World, flywheel_home: Path) -> None:
    aid, eid = world.asset["id"], world.experiment["id"]
    endpoints = [
        ("POST", "/assets", {"params": {"experiment_id": eid, "name": "x"}, "content": b"sneaky"}),
        ("GET", "/assets", {"params": {"experiment_id": eid}}),
        ("GET", f"/assets/{aid}", {}),
        ("GET", f"/assets/{aid}/download", {}),
        ("POST", f"/assets/{aid}/tags", {"json": {"tag": "x"}}),
        ("DELETE", f"/assets/{aid}/tags/best", {}),
        ("DELETE", f"/assets/{aid}", {}),
    ]
    for method, path, kwargs in endpoints:
        for headers in ({}, {"Authorization": "Bearer fw_not-a-key"}):
            assert_error(api.client.request(method, "/api/v1" + path, headers=headers, **kwargs), 401)
    assert api.ok(api.get(f"/assets/{aid}")) == world.asset
    assert len(blob_files(flywheel_home)) == 1


def test_another_users_asset_is_404(api: Api, other_api: Api, world: World, flywheel_home: Path) -> None:
    aid, eid, iid = world.asset["id"], world.experiment["id"], world.iteration["id"]
    theirs = other_api.experiment(other_api.project("theirs")["id"])
    endpoints = [
        ("POST", "/assets", {"params": {"experiment_id": eid, "name": "x"}, "content": b"sneaky"}),
        (
            "POST",
            "/assets",
            {"params": {"experiment_id": theirs["id"], "name": "x", "iteration_id": iid}, "content": b"s"},
        ),
        ("GET", "/assets", {"params": {"experiment_id": eid}}),
        ("GET", "/assets", {"params": {"iteration_id": iid}}),
        ("GET", f"/assets/{aid}", {}),
        ("GET", f"/assets/{aid}/download", {}),
        ("POST", f"/assets/{aid}/tags", {"json": {"tag": "mine"}}),
        ("DELETE", f"/assets/{aid}/tags/best", {}),
        ("DELETE", f"/assets/{aid}", {}),
    ]
    for method, path, kwargs in endpoints:
        headers = {"Content-Type": "application/octet-stream"} if "content" in kwargs else {}
        assert_error(other_api.request(method, path, headers=headers, **kwargs), 404)
    assert api.ok(api.get(f"/assets/{aid}")) == world.asset, "nothing changed for the owner"
    assert len(blob_files(flywheel_home)) == 1, "nothing was stored for the intruder"
