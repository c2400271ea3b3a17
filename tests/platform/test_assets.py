"""Assets: upload, download, tags, delete with reference counting, and a kill -9 during upload."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.blobs import get_blob_store
from flywheel.errors import InvalidInput, NotFound
from flywheel.platform import assets, experiments, iterations, projects
from flywheel.platform.models import Asset, User
from flywheel.platform.schemas import AssetCreate, ExperimentCreate, IterationCreate, ProjectCreate


def setup(session: Session, user: User):
    project = projects.create_project(session, user, ProjectCreate(name="look-at"))
    e = experiments.create_experiment(session, user, ExperimentCreate(project_id=project.id, name="ppo"))
    session.commit()
    return e


def test_upload_download_round_trip(session: Session, user: User, tmp_path: Path) -> None:
    e = setup(session, user)
    data = os.urandom(300_000)
    (tmp_path / "model.zip").write_bytes(data)
    it = iterations.create_iteration(session, user, e.id, IterationCreate())
    a = assets.upload_asset(
        session,
        user,
        AssetCreate(experiment_id=e.id, iteration_id=it.id, name="model.zip", tags=["checkpoint"]),
        tmp_path / "model.zip",
    )
    session.commit()
    assert a.blob_hash == hashlib.sha256(data).hexdigest() and a.size == len(data)
    assert get_blob_store().read_bytes(a.blob_hash) == data
    assert [x.id for x in iterations.get_iteration(session, user, it.id).output_assets] == [a.id]
    assert [x.id for x in assets.list_assets(session, user, experiment_id=e.id, tag="checkpoint")] == [a.id]
    assert assets.list_assets(session, user, experiment_id=e.id, tag="best") == []


def test_upload_from_stream(session: Session, user: User) -> None:
    e = setup(session, user)
    a = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="cfg.json"), [b'{"a":', b" 1}"])
    assert get_blob_store().read_bytes(a.blob_hash) == b'{"a": 1}'


def test_tags_are_idempotent_and_validated(session: Session, user: User) -> None:
    e = setup(session, user)
    a = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="m"), [b"x"])
    assets.tag_asset(session, user, a.id, ["best", "final", "best"])
    assert a.tags == ["best", "final"]
    assets.untag_asset(session, user, a.id, ["best", "never-there"])
    assert a.tags == ["final"]
    with pytest.raises(ValidationError, match="tag"):
        assets.tag_asset(session, user, a.id, ["has space"])


def test_iteration_of_another_experiment_is_refused(session: Session, user: User) -> None:
    e = setup(session, user)
    other = experiments.create_experiment(session, user, ExperimentCreate(project_id=e.project_id, name="other"))
    it = iterations.create_iteration(session, user, other.id, IterationCreate())
    with pytest.raises(InvalidInput, match="iteration_id"):
        assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, iteration_id=it.id, name="m"), [b"x"])


def test_delete_keeps_blob_while_referenced(session: Session, user: User) -> None:
    e = setup(session, user)
    other = experiments.create_experiment(session, user, ExperimentCreate(project_id=e.project_id, name="other"))
    a = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="m"), [b"shared bytes"])
    link = assets.link_asset(session, user, a.id, experiment_id=other.id)
    session.commit()
    digest = a.blob_hash
    assets.delete_asset(session, user, a.id)
    session.commit()
    assert get_blob_store().exists(digest)
    assets.delete_asset(session, user, link.id)
    session.commit()
    assert not get_blob_store().exists(digest)


def test_rolled_back_delete_keeps_blob(session: Session, user: User) -> None:
    e = setup(session, user)
    a = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="m"), [b"precious"])
    session.commit()
    assets.delete_asset(session, user, a.id)
    session.rollback()
    assert get_blob_store().exists(a.blob_hash)
    assert session.get(Asset, a.id) is not None


def test_other_user_cannot_read_or_delete(session: Session, user: User, other_user: User) -> None:
    e = setup(session, user)
    a = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="m"), [b"x"])
    session.commit()
    with pytest.raises(NotFound):
        assets.delete_asset(session, other_user, a.id)
    with pytest.raises(NotFound):
        assets.list_assets(session, other_user, experiment_id=e.id)
    with pytest.raises(NotFound):
        assets.upload_asset(session, other_user, AssetCreate(experiment_id=e.id, name="m"), [b"x"])


UPLOADER = """
import sys, time
from flywheel.platform import assets, access
from flywheel.platform.users import get_user
from flywheel.platform.schemas import AssetCreate
from flywheel.store import session_scope

def slow_chunks():
    for _ in range(10_000):
        time.sleep(0.001)
        yield b"x" * 65536
        print("chunk", flush=True)

with session_scope() as session:
    user = get_user(session, "ada")
    assets.upload_asset(session, user, AssetCreate(experiment_id=sys.argv[1], name="big"), slow_chunks())
"""


def test_kill_9_during_upload_leaves_no_half_blob_and_no_dangling_row(
    session: Session, user: User, flywheel_home: Path
) -> None:
    e = setup(session, user)
    proc = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, e.id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stdout is not None
    for _ in range(20):  # let it write ~1 MB
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.05)
    session.expire_all()
    blobs = get_blob_store()
    assert list(blobs.digests()) == []  # nothing visible under a hash
    rows = session.scalars(select(Asset)).all()
    assert all(blobs.exists(row.blob_hash) for row in rows) and rows == []
    assert blobs.sweep_temporaries() == 1  # the partial upload, only in tmp/


def test_upload_racing_the_last_delete_keeps_the_blob(session: Session, user: User, database_url: str) -> None:
    from sqlalchemy.orm import sessionmaker

    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: the deleting transaction waits for the upload to commit")
    e = setup(session, user)
    old = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="m"), [b"same bytes"])
    session.commit()
    digest = old.blob_hash
    with sessionmaker(bind=session.get_bind(), expire_on_commit=False)() as uploader:
        # The uploader finds the blob already stored; its row is not committed yet...
        new = assets.upload_asset(uploader, user, AssetCreate(experiment_id=e.id, name="m2"), [b"same bytes"])
        # ...when the last committed reference goes away.
        assets.delete_asset(session, user, old.id)
        session.commit()
        assert get_blob_store().exists(digest)
        uploader.commit()
    assert session.get(Asset, new.id) is not None and get_blob_store().exists(digest)


def test_collect_garbage_removes_only_orphans(session: Session, user: User) -> None:
    e = setup(session, user)
    kept = assets.upload_asset(session, user, AssetCreate(experiment_id=e.id, name="m"), [b"kept"])
    session.commit()
    orphan, _ = get_blob_store().put_bytes(b"orphan left by a skipped deletion")
    assert assets.collect_garbage(session) == [orphan]
    assert get_blob_store().exists(kept.blob_hash) and not get_blob_store().exists(orphan)
