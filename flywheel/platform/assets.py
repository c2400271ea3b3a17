"""Assets: named, tagged references to blobs. Uploading stores the bytes first, then the row.

Order matters for crash safety: a row is only ever written after its blob is complete on disk, and a blob
is only deleted after the transaction that removed its last reference has committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from flywheel.blobs import get_blob_store
from flywheel.errors import InvalidInput
from flywheel.platform import access
from flywheel.platform.models import Asset, Experiment, User
from flywheel.platform.schemas import AssetCreate, TagModel
from flywheel.store import new_id

_RELEASE_KEY = "flywheel.release_blobs"
_PINS_KEY = "flywheel.blob_pins"


def upload_asset(session: Session, user: User, data: AssetCreate, source: Path | BinaryIO | Iterable[bytes]) -> Asset:
    """Store `source`'s bytes and record them as an asset of an experiment (and optionally an iteration).

    Example:
        >>> asset = upload_asset(session, user, AssetCreate(experiment_id=e.id, name="model.zip"),
        ...                      Path("model.zip"))  # doctest: +SKIP
    """
    experiment = access.experiment(session, user, data.experiment_id)
    iteration_id = _check_iteration(session, user, experiment, data.iteration_id)
    blobs = get_blob_store()
    session.info.setdefault(_PINS_KEY, []).append(blobs.pin())  # released when the transaction ends
    if isinstance(source, Path | BinaryIO) or hasattr(source, "read"):
        digest, size = blobs.put_file(source)  # type: ignore[arg-type]
    else:
        digest, size = blobs.put_stream(source)
    asset = Asset(
        id=new_id("ast"),
        experiment_id=experiment.id,
        iteration_id=iteration_id,
        name=data.name,
        tags=sorted(set(data.tags)),
        blob_hash=digest,
        size=size,
    )
    session.add(asset)
    session.flush()
    return asset


def link_asset(
    session: Session, user: User, asset_id: str, *, experiment_id: str, iteration_id: str | None = None
) -> Asset:
    """A new asset row in another experiment pointing at the same blob: no bytes are copied."""
    source = access.asset(session, user, asset_id)
    experiment = access.experiment(session, user, experiment_id)
    linked = Asset(
        id=new_id("ast"),
        experiment_id=experiment.id,
        iteration_id=_check_iteration(session, user, experiment, iteration_id),
        name=source.name,
        tags=list(source.tags),
        blob_hash=source.blob_hash,
        size=source.size,
        linked_from_id=source.id,
    )
    session.add(linked)
    session.flush()
    return linked


def list_assets(
    session: Session,
    user: User,
    *,
    experiment_id: str | None = None,
    iteration_id: str | None = None,
    tag: str | None = None,
) -> list[Asset]:
    """The user's assets, filtered by experiment, iteration and tag."""
    if experiment_id is None and iteration_id is None:
        raise InvalidInput("give an experiment or an iteration", field="experiment_id")
    query = select(Asset).order_by(Asset.created_at, Asset.id)
    if experiment_id is not None:
        query = query.where(Asset.experiment_id == access.experiment(session, user, experiment_id).id)
    if iteration_id is not None:
        query = query.where(Asset.iteration_id == access.iteration(session, user, iteration_id).id)
    assets = list(session.scalars(query))
    return [a for a in assets if tag is None or tag in a.tags]


def tag_asset(session: Session, user: User, asset_id: str, tags: list[str]) -> Asset:
    """Add tags (idempotent)."""
    asset = access.asset(session, user, asset_id)
    asset.tags = sorted(set(asset.tags) | {TagModel(tag=t).tag for t in tags})
    session.flush()
    return asset


def untag_asset(session: Session, user: User, asset_id: str, tags: list[str]) -> Asset:
    """Remove tags (idempotent)."""
    asset = access.asset(session, user, asset_id)
    asset.tags = sorted(set(asset.tags) - set(tags))
    session.flush()
    return asset


def delete_asset(session: Session, user: User, asset_id: str) -> None:
    """Delete an asset; its blob goes too once nothing else references it (after commit)."""
    asset = access.asset(session, user, asset_id)
    release_blobs_after_commit(session, [asset.blob_hash])
    session.delete(asset)
    session.flush()


def blob_reference_count(session: Session, digest: str) -> int:
    """How many asset rows point at a blob."""
    return session.scalar(select(func.count()).select_from(Asset).where(Asset.blob_hash == digest)) or 0


def release_blobs_after_commit(session: Session, digests: Iterable[str]) -> None:
    """Once this transaction commits, delete each of `digests` that no asset references any more."""
    pending: set[str] = session.info.setdefault(_RELEASE_KEY, set())
    pending.update(digests)


def collect_garbage(session: Session) -> list[str]:
    """Delete every stored blob that no asset references (orphans of skipped or crashed deletions).

    Waits for uploads in progress to commit first. Returns the digests removed.
    """
    blobs = get_blob_store()
    removed: list[str] = []
    with blobs.deletion_lock(wait=True):
        referenced = set(session.scalars(select(Asset.blob_hash).distinct()))
        for digest in list(blobs.digests()):
            if digest not in referenced and blobs.delete(digest):
                removed.append(digest)
    return removed


@event.listens_for(Session, "after_commit")
def _release(session: Session) -> None:
    _unpin(session)
    pending: set[str] = session.info.pop(_RELEASE_KEY, set())
    if not pending:
        return
    blobs = get_blob_store()
    with blobs.deletion_lock() as granted:
        if not granted:
            return  # an upload is in flight; `collect_garbage` removes what is left
        with session.get_bind().connect() as connection:
            for digest in pending:
                count = connection.scalar(select(func.count()).select_from(Asset).where(Asset.blob_hash == digest))
                if not count:
                    blobs.delete(digest)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_RELEASE_KEY, None)
    _unpin(session)


@event.listens_for(Session, "after_transaction_end")
def _transaction_end(session: Session, transaction: object) -> None:
    if getattr(transaction, "parent", None) is None and not session.in_transaction():
        _unpin(session)


def _unpin(session: Session) -> None:
    from flywheel.blobs import BlobStore

    for handle in session.info.pop(_PINS_KEY, []):
        BlobStore.unpin(handle)


def _check_iteration(session: Session, user: User, experiment: Experiment, iteration_id: str | None) -> str | None:
    if iteration_id is None:
        return None
    iteration = access.iteration(session, user, iteration_id)
    if iteration.experiment_id != experiment.id:
        raise InvalidInput(
            f"iteration {iteration_id} belongs to experiment {iteration.experiment_id}, not {experiment.id}",
            field="iteration_id",
        )
    return iteration.id
