"""Datasets through the API, on SQLite and PostgreSQL: every operation, not-found and permission cases."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from flywheel.datasets import catalog
from flywheel.datasets.writer import create_dataset
from tests.api.conftest import Api, assert_error, make_eval
from tests.datasets.test_catalog import write_folder

SINE = {"observation.state": {"dtype": "float32", "shape": [2], "names": ["shoulder", "elbow"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["shoulder", "elbow"]}}


def recorded(api: Api, name: str = "arm", *, episodes: int = 3, frames: int = 10, source: str = "sine") -> dict:
    features = dict(SINE)
    if source == "sine-camera":
        features["observation.images.top"] = {"dtype": "video", "shape": [32, 48, 3]}
    api.ok(api.post("/datasets", json={"name": name, "features": features, "fps": 10}), 201)
    return api.ok(api.post(f"/datasets/{name}/record",
                           json={"source": source, "episodes": episodes, "frames": frames, "task": "wave"}))


def tar_of(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return buf.getvalue()


def upload(api: Api, path: str, data: bytes, **params: Any) -> Any:
    return api.post(path, params=params, content=data, headers={"Content-Type": "application/octet-stream"})


def test_create_list_show_update_delete(api: Api) -> None:
    body = {"name": "demos", "features": SINE, "fps": 30, "robot_type": "so100", "description": "first"}
    created = api.ok(api.post("/datasets", json=body), 201)
    assert (created["fps"], created["robot_type"], created["episodes"], created["is_eval"]) == (30, "so100", 0, False)
    assert created["features"]["action"]["shape"] == [2]
    assert_error(api.post("/datasets", json=body), 409)
    assert_error(api.post("/datasets", json={**body, "name": "x", "generated_by_iteration_id": "itr_1"}), 409)
    bad = assert_error(api.post("/datasets", json={**body, "name": "y", "features": {"a": {"dtype": "complex",
                                                                                           "shape": [1]}}}), 422)
    assert "float32" in json.dumps(bad)
    assert_error(api.post("/datasets", json={**body, "name": "y", "features": {"index": {"dtype": "float32",
                                                                                          "shape": [1]}}}), 422,
                 field="features")
    assert [d["name"] for d in api.ok(api.get("/datasets"))] == ["demos"]
    assert api.ok(api.get("/datasets", params={"evals": True})) == []
    assert api.ok(api.get(f"/datasets/{created['id']}"))["name"] == "demos"
    renamed = api.ok(api.patch("/datasets/demos", json={"name": "demos-2", "description": "second"}))
    assert (renamed["name"], renamed["description"]) == ("demos-2", "second")
    root = Path(created["root_path"])
    assert root.is_dir()
    api.ok(api.delete("/datasets/demos-2"), 204)
    assert not root.exists()
    assert_error(api.get("/datasets/demos-2"), 404)


def test_record_query_trim_delete_label(api: Api) -> None:
    rec = recorded(api, episodes=3)
    assert (rec["chunk_id"], rec["episodes_added"], rec["frames_added"]) == (0, 3, 30)
    api.ok(api.post("/datasets/arm/record", json={"episodes": 1, "frames": 5, "task": "circle"}))
    trimmed = api.ok(api.post("/datasets/arm/episodes/0/trim", json={"start_frame": 2, "end_frame": 8}))
    assert (trimmed["start_frame"], trimmed["end_frame"]) == (2, 8)
    out_of_range = assert_error(api.post("/datasets/arm/episodes/0/trim", json={"start_frame": 2, "end_frame": 11}),
                                422, field="start_frame/end_frame")
    assert out_of_range["allowed"] == "0 <= start < end <= 10"
    assert_error(api.post("/datasets/arm/episodes/7/trim", json={"start_frame": 0, "end_frame": 1}), 404)
    assert [e["episode_index"] for e in api.ok(api.post("/datasets/arm/episodes/delete",
                                                        json={"episode_indexes": [1]}))] == [1]
    assert_error(api.post("/datasets/arm/episodes/delete", json={"episode_indexes": [2, 50]}), 404)
    api.ok(api.put("/datasets/arm/episodes/2/success", json={"success": False}))

    def query(**params: Any) -> list[int]:
        return [e["episode_index"] for e in api.ok(api.get("/datasets/arm/episodes", params=params))]

    assert query() == [0, 2, 3]
    assert query(deleted="yes") == [1]
    assert query(deleted="any", chunk_id=[1]) == [3]
    assert query(task=["circle"]) == [3]
    assert query(success="no") == [2]
    assert query(success="unknown") == [0, 3]
    first = api.ok(api.get("/datasets/arm/episodes/3"))["created_at"]
    assert query(created_after=first) == [3]
    assert_error(api.get("/datasets/arm/episodes", params={"deleted": "maybe"}), 422, field="deleted")
    assert_error(api.get("/datasets/arm/episodes", params={"created_after": "2025-01-01T00:00:00"}), 422,
                 field="created_after")
    api.ok(api.post("/datasets/arm/episodes/undelete", json={"episode_indexes": [1]}))
    assert query() == [0, 1, 2, 3]
    shown = api.ok(api.get("/datasets/arm"))
    assert (shown["episodes"], shown["frames"], shown["chunks"]) == (4, 6 + 10 + 10 + 5, 2)
    assert_error(api.post("/datasets/arm/record", json={"source": "teleop"}), 422, field="source")


def test_upload_import_append_export(api: Api, session: Session, tmp_path: Path) -> None:
    recorded(api, episodes=2)
    exported = api.ok(api.post("/datasets/arm/export", json={"format": "lerobot"}))
    assert exported["episodes"] == 2 and Path(exported["manifest_path"]).is_file()
    assert exported["manifest"]["format"] == "lerobot-v2.1"
    rlds = api.ok(api.post("/datasets/arm/export", json={"format": "rlds-jsonl", "origin": "lab-a"}))
    assert rlds["manifest"]["origin"] == "lab-a"
    assert_error(api.post("/datasets/arm/export", json={"format": "hdf5"}), 422, field="format")

    up = api.ok(upload(api, "/datasets/upload", tar_of(Path(exported["path"])), name="from-lerobot"), 201)
    assert (up["format"], up["episodes_added"], up["dataset"]["episodes"]) == ("lerobot", 2, 2)
    flywheel_tar = tar_of(Path(api.ok(api.get("/datasets/arm"))["root_path"]))
    copy = api.ok(upload(api, "/datasets/upload", flywheel_tar, name="copy", format="flywheel"), 201)
    assert copy["dataset"]["episodes"] == 2
    data = Path(rlds["path"]).read_bytes()
    imported = api.ok(upload(api, "/datasets/upload", data, name="from-rlds", format="rlds-jsonl"), 201)
    assert imported["episodes_added"] == 2 and imported["report"][0].endswith("2/2 episodes valid, 20 steps")
    assert_error(upload(api, "/datasets/upload", b"not a tar", name="junk"), 422, field="body")
    assert_error(upload(api, "/datasets/upload", b"\xff\xfe{", name="junk", format="rlds-jsonl"), 422, field="source")

    appended = api.ok(upload(api, "/datasets/arm/append", data, format="rlds-jsonl"))
    assert (appended["chunk_id"], appended["episodes_added"], appended["dataset"]["episodes"]) == (1, 2, 4)
    write_folder(tmp_path / "other")
    mismatch = assert_error(upload(api, "/datasets/arm/append", tar_of(tmp_path / "other"), format="flywheel"), 422,
                            field="features.action")
    assert "float32 [1]" in mismatch["message"]
    assert api.ok(api.get("/datasets/arm"))["episodes"] == 4

    project = api.project()
    experiment = api.experiment(project["id"])
    iteration = api.iteration(experiment["id"])
    eval_id = make_eval(session, api, experiment["id"], iteration["id"])
    root = catalog.get_settings().resolved_dataset_dir() / eval_id
    with create_dataset(root, features=SINE, fps=10):
        pass
    session.get(catalog.Dataset, eval_id).root_path = str(root)
    session.commit()
    refused = assert_error(upload(api, f"/datasets/{eval_id}/append", data, format="rlds-jsonl"), 409)
    assert "evals are created by jobs" in refused["message"]
    assert_error(api.post(f"/datasets/{eval_id}/record", json={}), 409)
    assert [d["id"] for d in api.ok(api.get("/datasets", params={"evals": True}))] == [eval_id]


def test_compact_verify_stats_render(api: Api) -> None:
    recorded(api, episodes=3, source="sine-camera")
    api.ok(api.post("/datasets/arm/episodes/delete", json={"episode_indexes": [0]}))
    api.ok(api.post("/datasets/arm/episodes/1/trim", json={"start_frame": 0, "end_frame": 4}))
    stats = api.ok(api.get("/datasets/arm/stats"))
    assert (stats["episodes"], stats["frames"], stats["features"]["action"]["count"]) == (2, 14, [14])
    gif = api.get("/datasets/arm/episodes/1/render", params={"format": "gif"})
    assert gif.status_code == 200 and gif.content[:3] == b"GIF" and gif.headers["content-type"] == "image/gif"
    mp4 = api.get("/datasets/arm/episodes/2/render")
    assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
    assert_error(api.get("/datasets/arm/episodes/1/render", params={"key": "observation.images.wrist"}), 422,
                 field="key")
    assert api.ok(api.post("/datasets/compact-due", params={"min_deleted_fraction": 0.9})) == []
    [due] = api.ok(api.post("/datasets/compact-due", params={"min_deleted_fraction": 0.4}))
    assert (due["episodes_before"], due["episodes_after"], due["frames_after"]) == (3, 2, 14)
    again = api.ok(api.post("/datasets/arm/compact"))
    assert (again["episodes_before"], again["episodes_after"]) == (2, 2)
    assert [e["total_frames"] for e in api.ok(api.get("/datasets/arm/episodes"))] == [4, 10]
    report = api.ok(api.get("/datasets/arm/verify"))
    assert (report["ok"], report["episodes_checked"], report["damaged_episodes"]) == (True, 2, [])
    root = Path(api.ok(api.get("/datasets/arm"))["root_path"])
    parquet = next((root / "data").rglob("episode_000001.parquet"))
    parquet.write_bytes(b"garbage")
    report = api.ok(api.get("/datasets/arm/verify"))
    assert (report["ok"], report["damaged_episodes"]) == (False, [1])


def test_other_users_datasets_answer_404_everywhere(api: Api, other_api: Api) -> None:
    ds = recorded(api, episodes=1, frames=3)["dataset"]
    path = f"/datasets/{ds['id']}"
    calls = [
        other_api.get(path), other_api.patch(path, json={"description": "mine"}), other_api.delete(path),
        other_api.get(f"{path}/episodes"), other_api.get(f"{path}/episodes/0"),
        other_api.post(f"{path}/episodes/0/trim", json={"start_frame": 0, "end_frame": 1}),
        other_api.post(f"{path}/episodes/delete", json={"episode_indexes": [0]}),
        other_api.post(f"{path}/episodes/undelete", json={"episode_indexes": [0]}),
        other_api.put(f"{path}/episodes/0/success", json={"success": True}),
        other_api.get(f"{path}/episodes/0/render"),
        other_api.post(f"{path}/record", json={}), other_api.post(f"{path}/compact"),
        other_api.get(f"{path}/verify"), other_api.get(f"{path}/stats"),
        other_api.post(f"{path}/export", json={"format": "lerobot"}),
        upload(other_api, f"{path}/append", b"{}", format="rlds-jsonl"),
    ]
    for response in calls:
        assert_error(response, 404)
    assert other_api.ok(other_api.get("/datasets")) == []
    assert other_api.ok(other_api.post("/datasets/compact-due", params={"min_deleted_fraction": 0.01})) == []
    assert api.ok(api.get(path))["episodes"] == 1
