"""The dataset catalog through the service layer, on SQLite and PostgreSQL; the folder is the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.datasets import catalog
from flywheel.datasets.models import Dataset, Episode
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.schemas import DatasetCreate, DatasetUpdate, EpisodeQuery, ExportPublic
from flywheel.datasets.sources import SineArm
from flywheel.datasets.writer import create_dataset
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.jobs.models import Job
from flywheel.platform import experiments, iterations, projects
from flywheel.platform.models import User
from flywheel.platform.schemas import ExperimentCreate, IterationCreate, ProjectCreate
from flywheel.store import new_id

FEATURES = {"observation.state": {"dtype": "float32", "shape": [2], "names": None},
            "action": {"dtype": "float32", "shape": [1], "names": None}}


def write_folder(root: Path, episodes: int = 3, frames: int = 10, task: str = "reach") -> Path:
    with create_dataset(root, features=FEATURES, fps=10, robot_type="arm") as w:
        for e in range(episodes):
            for i in range(frames):
                w.add_frame({"observation.state": np.array([e, i], np.float32),
                             "action": np.array([i / frames], np.float32)}, task=task)
            w.save_episode(success=e % 2 == 0)
    return root


def rows(session: Session, dataset: Dataset) -> list[Episode]:
    return list(session.scalars(select(Episode).where(Episode.dataset_id == dataset.id)
                                .order_by(Episode.episode_index)))


def test_new_folder_then_register_mirrors_the_episodes(session: Session, user: User, other_user: User) -> None:
    dataset_id, root = catalog.new_dataset_folder()
    assert root.name == dataset_id and dataset_id.startswith("dst_") and not root.exists()
    write_folder(root)
    ds = catalog.register_folder(session, user, dataset_id=dataset_id, root=root, name="demos", description="d")
    session.commit()
    assert (ds.id, ds.fps, ds.robot_type, ds.is_eval) == (dataset_id, 10, "arm", False)
    assert ds.features == FEATURES
    mirrored = rows(session, ds)
    assert [(r.episode_index, r.total_frames, r.success, r.task) for r in mirrored] == [
        (0, 10, True, "reach"), (1, 10, False, "reach"), (2, 10, True, "reach")]
    with pytest.raises(Conflict, match="demos"):
        catalog.register_folder(session, user, dataset_id=catalog.new_dataset_folder()[0], root=root, name="demos")
    with pytest.raises(Conflict, match="registered already"):
        catalog.register_folder(session, other_user, dataset_id=dataset_id, root=root, name="demos")
    with pytest.raises(InvalidInput, match="name"):
        catalog.register_folder(session, user, dataset_id=catalog.new_dataset_folder()[0], root=root, name="a/b")
    with pytest.raises(NotFound):
        catalog.register_folder(session, user, dataset_id=catalog.new_dataset_folder()[0],
                                root=root.parent / "nothing", name="other")


def test_register_eval_records_provenance_and_checks_it(session: Session, user: User, other_user: User) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    exp = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo"))
    exp2 = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="sac"))
    it = iterations.create_iteration(session, user, exp.id, IterationCreate())
    job = Job(id=new_id("job"), owner_id=user.id, experiment_id=exp.id, iteration_index=0)
    session.add(job)
    session.commit()
    dataset_id, root = catalog.new_dataset_folder()
    write_folder(root, episodes=2)
    with pytest.raises(InvalidInput, match="iteration_id"):
        catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ev", experiment_id=exp2.id,
                              iteration_id=it.id)
    with pytest.raises(NotFound):
        catalog.register_eval(session, other_user, dataset_id=dataset_id, root=root, name="ev",
                              experiment_id=exp.id, iteration_id=it.id)
    with pytest.raises(NotFound, match="job"):
        catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ev", experiment_id=exp.id,
                              iteration_id=it.id, job_id="job_nope")
    ev = catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ppo-it0-eval",
                               experiment_id=exp.id, iteration_id=it.id, job_id=job.id)
    session.commit()
    assert ev.is_eval
    assert (ev.generated_by_experiment_id, ev.generated_by_iteration_id, ev.generated_by_job_id) == (
        exp.id, it.id, job.id)
    assert len(rows(session, ev)) == 2


# --- the operations, through the service -----------------------------------------------------------------


def sine_dataset(session: Session, user: User, name: str = "arm", *, episodes: int = 3, frames: int = 12,
                 seed: int = 0, camera: bool = False) -> Dataset:
    """A dataset recorded from the scripted sine arm (virtual clock), committed."""
    source = SineArm(seed=seed, camera=camera, fps=10)
    catalog.record(session, user, name, source, episodes=episodes, frames=frames, task="wave", realtime=False,
                   create=True, fps=10)
    session.commit()
    return catalog.get_dataset(session, user, name)


def indexes(episodes: list[Episode]) -> list[int]:
    return [e.episode_index for e in episodes]


def test_create_empty_refuses_evals_and_bad_features(session: Session, user: User) -> None:
    data = DatasetCreate(name="empty", features=FEATURES, fps=30, robot_type="so100")
    ds = catalog.create_dataset(session, user, data)
    session.commit()
    assert (ds.fps, ds.robot_type, ds.features, ds.is_eval) == (30, "so100", FEATURES, False)
    assert (Path(ds.root_path) / "meta" / "info.json").is_file()
    assert Path(ds.root_path).parent == catalog.get_settings().resolved_dataset_dir()
    assert catalog.dataset_public(session, ds).episodes == 0
    with pytest.raises(Conflict, match="evals are created by jobs"):
        catalog.create_dataset(session, user, DatasetCreate(name="ev", features=FEATURES,
                                                            generated_by_iteration_id="itr_x"))
    with pytest.raises(ValidationError, match="features"):
        DatasetCreate(name="bad", features={"frame_index": {"dtype": "float32", "shape": [1]}})
    with pytest.raises(ValidationError, match="dtype"):
        DatasetCreate.model_validate({"name": "bad", "features": {"a": {"dtype": "complex", "shape": [1]}}})
    # A folder made in a transaction that rolls back is removed with it.
    other = catalog.create_dataset(session, user, DatasetCreate(name="gone", features=FEATURES))
    root = Path(other.root_path)
    assert root.is_dir()
    session.rollback()
    assert not root.exists()
    assert [d.name for d in catalog.list_datasets(session, user)] == ["empty"]


def test_record_append_edit_and_query_keep_the_mirror_in_step(session: Session, user: User) -> None:
    ds = sine_dataset(session, user, episodes=3)
    more = catalog.record(session, user, "arm", SineArm(seed=1, fps=10), episodes=2, frames=8, task="circle",
                          realtime=False)
    session.commit()
    assert (more.chunk_id, more.episodes_added, more.frames_added) == (1, 2, 16)
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(chunk_id=[1]))) == [3, 4]
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(task=["circle"]))) == [3, 4]

    row = catalog.trim(session, user, "arm", 0, start_frame=2, end_frame=10)
    assert (row.start_frame, row.end_frame, row.total_frames) == (2, 10, 12)
    with pytest.raises(InvalidInput, match="start_frame/end_frame") as bad:
        catalog.trim(session, user, "arm", 0, start_frame=5, end_frame=13)
    assert bad.value.allowed == "0 <= start < end <= 12"
    with pytest.raises(NotFound, match="episode 9"):
        catalog.trim(session, user, "arm", 9, start_frame=0, end_frame=1)
    catalog.soft_delete(session, user, "arm", [1])
    with pytest.raises(NotFound):
        catalog.soft_delete(session, user, "arm", [2, 99])
    catalog.set_success(session, user, "arm", 2, True)
    session.commit()

    assert indexes(catalog.query_episodes(session, user, "arm")) == [0, 2, 3, 4]
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(deleted="yes"))) == [1]
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(deleted="any"))) == [0, 1, 2, 3, 4]
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(success="yes"))) == [2]
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(success="unknown"))) == [0, 3, 4]
    created = [e.created_at for e in catalog.query_episodes(session, user, "arm", EpisodeQuery(deleted="any"))]
    window = EpisodeQuery(created_after=created[3], created_before=created[4], deleted="any")
    assert indexes(catalog.query_episodes(session, user, "arm", window)) == [3]
    assert indexes(catalog.query_episodes(session, user, "arm", EpisodeQuery(limit=2, offset=1))) == [2, 3]

    # The folder is the truth: the mirror equals its records, and a rebuilt mirror is identical.
    folder = DatasetReader(Path(ds.root_path)).records
    mirrored = rows(session, ds)
    assert [(r.start_frame, r.end_frame, r.soft_deleted, r.success, r.chunk_id) for r in folder] == [
        (r.start_frame, r.end_frame, r.soft_deleted, r.success, r.chunk_id) for r in mirrored]
    catalog.sync(session, user, "arm")
    assert [(r.episode_index, r.end_frame, r.soft_deleted) for r in rows(session, ds)] == [
        (r.episode_index, r.end_frame, r.soft_deleted) for r in mirrored]
    public = catalog.dataset_public(session, ds)
    assert (public.episodes, public.deleted_episodes, public.frames, public.chunks) == (4, 1, 8 + 12 + 16, 2)

    catalog.undelete(session, user, "arm", [1])
    assert indexes(catalog.query_episodes(session, user, "arm")) == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidInput, match=r"features\.observation\.images\.top"):
        catalog.record(session, user, "arm", SineArm(camera=True), episodes=1, frames=2, task="t", realtime=False)
    assert len(rows(session, ds)) == 5


def test_exports_imports_uploads_and_appends_round_trip(session: Session, user: User, tmp_path: Path) -> None:
    sine_dataset(session, user, episodes=3)
    catalog.trim(session, user, "arm", 0, start_frame=0, end_frame=6)
    catalog.soft_delete(session, user, "arm", [2])
    session.commit()
    out: dict[str, ExportPublic] = {}
    for fmt, target in (("lerobot", tmp_path / "le"), ("rlds-jsonl", tmp_path / "a.jsonl"),
                        ("tfrecord", tmp_path / "a.tfrecord")):
        out[fmt] = catalog.export(session, user, "arm", fmt=fmt, out=target)
        assert (out[fmt].episodes, out[fmt].frames) == (2, 18), fmt
        manifest = json.loads(Path(out[fmt].manifest_path).read_text())
        assert (manifest["origin"], manifest["episodes"]) == ("arm", 2)
        assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    with pytest.raises(InvalidInput, match="format") as bad:
        catalog.export(session, user, "arm", fmt="hdf5", out=tmp_path / "x")
    assert bad.value.allowed == ["lerobot", "rlds-jsonl", "tfrecord"]
    default = catalog.export(session, user, "arm", fmt="rlds-jsonl")
    assert Path(default.path).is_file() and ds_id(session, user, "arm") in default.path

    up = catalog.create_from_folder(session, user, name="from-lerobot", source=tmp_path / "le")
    copy = catalog.create_from_folder(session, user, name="copy", source=Path(catalog.get_dataset(
        session, user, "arm").root_path))
    rlds = catalog.import_dataset(session, user, name="from-rlds", source=tmp_path / "a.jsonl")
    tf = catalog.import_dataset(session, user, name="from-tf", source=tmp_path / "a.tfrecord")
    session.commit()
    assert (up.format, up.episodes_added, up.frames_added) == ("lerobot", 2, 18)
    assert (copy.format, copy.dataset.episodes, copy.dataset.deleted_episodes) == ("flywheel", 2, 1)
    assert (rlds.format, rlds.episodes_added, rlds.report[0].endswith("2/2 episodes valid, 18 steps")) == (
        "rlds-jsonl", 2, True)
    assert (tf.format, tf.episodes_added, tf.dataset.features) == ("tfrecord", 2, SineArm().features)
    with pytest.raises(Conflict, match="from-rlds"):
        catalog.import_dataset(session, user, name="from-rlds", source=tmp_path / "a.jsonl")

    # Append: a new chunk, existing files untouched; a features mismatch is named and changes nothing.
    root = Path(catalog.get_dataset(session, user, "arm").root_path)
    before = {p: p.stat().st_mtime_ns for p in (root / "data").rglob("*.parquet")}
    added = catalog.append_from(session, user, "arm", source=tmp_path / "a.tfrecord")
    session.commit()
    assert (added.chunk_id, added.episodes_added, added.dataset.episodes) == (1, 2, 4)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    write_folder(tmp_path / "other")
    with pytest.raises(InvalidInput, match=r"features\.action") as mismatch:
        catalog.append_from(session, user, "arm", source=tmp_path / "other")
    assert "the source has float32 [1], the dataset float32 [2]" in str(mismatch.value)
    with pytest.raises(InvalidInput, match="format"):
        catalog.append_from(session, user, "arm", source=tmp_path / "a.jsonl", fmt="csv")
    assert catalog.dataset_public(session, catalog.get_dataset(session, user, "arm")).episodes == 4


def ds_id(session: Session, user: User, name: str) -> str:
    return catalog.get_dataset(session, user, name).id


def test_rosbag_import_maps_topics_and_reports_bad_mappings(session: Session, user: User, tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin

    from tests.datasets.test_rosbag import robot_streams, write_bag

    bag = write_bag(tmp_path / "run1", StoragePlugin.MCAP, robot_streams())
    topics = ["/joints:observation.state:position", "/cmd_vel:action:linear,angular"]
    imp = catalog.import_dataset(session, user, name="bag", source=bag, topics=topics, fps=20, task="drive")
    session.commit()
    assert imp.format == "rosbag" and imp.episodes_added == 1
    assert imp.dataset.features["action"]["shape"] == [6]
    assert catalog.query_episodes(session, user, "bag")[0].task == "drive"
    with pytest.raises(InvalidInput, match="topic"):
        catalog.import_dataset(session, user, name="bag2", source=bag, topics=["/joints"], fps=20)
    with pytest.raises(InvalidInput, match="fps"):
        catalog.import_dataset(session, user, name="bag2", source=bag, topics=topics)


def test_compact_verify_stats_render_and_delete(session: Session, user: User, tmp_path: Path) -> None:
    ds = sine_dataset(session, user, episodes=4, camera=True)
    catalog.trim(session, user, "arm", 1, start_frame=2, end_frame=8)
    catalog.soft_delete(session, user, "arm", [0])
    session.commit()
    stats = catalog.stats(session, user, "arm")
    assert (stats.episodes, stats.frames, stats.features["action"].count) == (3, 6 + 24, [30])
    clip, n = catalog.render(session, user, "arm", 1, out=tmp_path / "ep1.gif")
    assert clip.read_bytes()[:3] == b"GIF" and n == 6
    with pytest.raises(InvalidInput, match="key"):
        catalog.render(session, user, "arm", 1, out=tmp_path / "x.mp4", key="observation.images.wrist")

    assert catalog.hidden_fractions(session)[ds.id] == pytest.approx((12 + 6) / 48)
    assert catalog.compact_due(session, min_deleted_fraction=0.5) == []
    [report] = catalog.compact_due(session, min_deleted_fraction=0.3)
    session.commit()
    assert (report.episodes_before, report.episodes_after, report.frames_after) == (4, 3, 30)
    assert [(r.episode_index, r.total_frames, r.soft_deleted) for r in rows(session, ds)] == [
        (0, 6, False), (1, 12, False), (2, 12, False)]
    assert catalog.compact(session, user, "arm").episodes_after == 3

    assert catalog.verify(session, user, "arm").ok
    damaged = next((Path(ds.root_path) / "data").rglob("episode_000001.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:40])
    report = catalog.verify(session, user, "arm")
    assert (report.ok, report.damaged_episodes) == (False, [1])

    root = Path(ds.root_path)
    catalog.delete_dataset(session, user, "arm")
    assert root.is_dir()  # the folder goes only once the deletion is committed
    session.commit()
    assert not root.exists()
    assert session.scalars(select(Episode)).all() == []


def test_other_users_datasets_are_not_found_everywhere(session: Session, user: User, other_user: User,
                                                       tmp_path: Path) -> None:
    ds = sine_dataset(session, user, episodes=1, frames=4)
    calls = [
        lambda: catalog.get_dataset(session, other_user, ds.id),
        lambda: catalog.update_dataset(session, other_user, ds.id, DatasetUpdate(description="mine")),
        lambda: catalog.query_episodes(session, other_user, ds.id),
        lambda: catalog.trim(session, other_user, ds.id, 0, start_frame=0, end_frame=1),
        lambda: catalog.soft_delete(session, other_user, ds.id, [0]),
        lambda: catalog.undelete(session, other_user, ds.id, [0]),
        lambda: catalog.compact(session, other_user, ds.id),
        lambda: catalog.verify(session, other_user, ds.id),
        lambda: catalog.stats(session, other_user, ds.id),
        lambda: catalog.export(session, other_user, ds.id, fmt="lerobot", out=tmp_path / "x"),
        lambda: catalog.render(session, other_user, ds.id, 0, out=tmp_path / "x.gif"),
        lambda: catalog.append_from(session, other_user, ds.id, source=Path(ds.root_path)),
        lambda: catalog.record(session, other_user, ds.id, SineArm(), episodes=1, frames=1, task="t"),
        lambda: catalog.sync(session, other_user, ds.id),
        lambda: catalog.delete_dataset(session, other_user, ds.id),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert catalog.list_datasets(session, other_user) == []
    assert catalog.compact_due(session, user=other_user, min_deleted_fraction=0.01) == []
    assert len(rows(session, ds)) == 1


def test_evals_refuse_appends_and_recording(session: Session, user: User, tmp_path: Path) -> None:
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    exp = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo"))
    it = iterations.create_iteration(session, user, exp.id, IterationCreate())
    dataset_id, root = catalog.new_dataset_folder()
    write_folder(root, episodes=1)
    catalog.register_eval(session, user, dataset_id=dataset_id, root=root, name="ev", experiment_id=exp.id,
                          iteration_id=it.id)
    session.commit()
    write_folder(tmp_path / "more", episodes=1)
    with pytest.raises(Conflict, match="evals are created by jobs"):
        catalog.append_from(session, user, "ev", source=tmp_path / "more")
    with pytest.raises(Conflict, match="evals are created by jobs"):
        catalog.record(session, user, "ev", SineArm(), episodes=1, frames=1, task="t")
    assert [d.name for d in catalog.list_datasets(session, user, evals=True)] == ["ev"]
    assert catalog.list_datasets(session, user, evals=False) == []
