"""Assets: named, tagged blobs of an experiment (or one of its iterations), stored once per content.

The upload body is the raw file (`application/octet-stream`), streamed into the blob store as it arrives;
the metadata travels in the query string. Downloads stream the blob back, with its sha256 as the ETag.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1
    curl -H "$H" -H 'Content-Type: application/octet-stream' --data-binary @model.onnx \\
         "$API/assets?experiment_id=exp_…&name=model.onnx&tags=checkpoint&tags=best"
    curl -H "$H" "$API/assets?experiment_id=exp_…&tag=best"
    curl -H "$H" -o model.onnx $API/assets/ast_…/download
    curl -H "$H" -H 'Content-Type: application/json' -X POST $API/assets/ast_…/tags -d '{"tag": "final"}'
    curl -H "$H" -X DELETE $API/assets/ast_…/tags/best
    curl -H "$H" -X DELETE $API/assets/ast_…
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, BinaryIO
from urllib.parse import quote

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.errors import ErrorBody, UnsupportedMediaType
from flywheel.api.params import IDENT_MAX, IDENT_PATTERN, AssetId, ident_query
from flywheel.api.streaming import body_chunks
from flywheel.blobs import CHUNK, get_blob_store
from flywheel.platform import access, assets
from flywheel.platform.schemas import AssetCreate, AssetPublic, TagModel

router = APIRouter(prefix="/assets", tags=["assets"])

UPLOAD_MEDIA_TYPE = "application/octet-stream"
_BINARY = {UPLOAD_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": {"required": True, "content": _BINARY, "description": "The file's bytes."}},
    responses={415: {"model": ErrorBody, "description": f"The body is not `{UPLOAD_MEDIA_TYPE}`."}},
)
async def upload_asset(
    request: Request, session: SessionDep, user: CurrentUser, meta: Annotated[AssetCreate, Query()]
) -> AssetPublic:
    """Upload a file as an asset: the body is streamed into the blob store, then the row is written.

    Storing bytes another asset already has keeps one copy. The row is only written once the blob is
    complete on disk, so an interrupted upload leaves nothing behind but a swept temporary file.
    """
    media_type = request.headers.get("content-type", UPLOAD_MEDIA_TYPE).split(";")[0].strip().lower()
    if media_type != UPLOAD_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"an upload body is the raw file, sent as {UPLOAD_MEDIA_TYPE}, not {media_type}",
            hint="curl --data-binary @file -H 'Content-Type: application/octet-stream' …",
        )

    def store() -> AssetPublic:  # blocking (file and database I/O): runs in a worker thread
        return AssetPublic.model_validate(assets.upload_asset(session, user, meta, body_chunks(request)))

    return await anyio.to_thread.run_sync(store)


@router.get("")
def list_assets(
    session: SessionDep,
    user: CurrentUser,
    experiment_id: Annotated[str | None, ident_query("Assets of this experiment.")] = None,
    iteration_id: Annotated[str | None, ident_query("Assets output by this iteration.")] = None,
    tag: Annotated[str | None, ident_query("Only assets with this tag.")] = None,
) -> list[AssetPublic]:
    """Assets of an experiment or an iteration (one of the two is required), optionally with a tag."""
    found = assets.list_assets(session, user, experiment_id=experiment_id, iteration_id=iteration_id, tag=tag)
    return [AssetPublic.model_validate(a) for a in found]


@router.get("/{asset_id}")
def read_asset(session: SessionDep, user: CurrentUser, asset_id: AssetId) -> AssetPublic:
    """One asset's metadata."""
    return AssetPublic.model_validate(access.asset(session, user, asset_id))


@router.get(
    "/{asset_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": _BINARY, "description": "The asset's bytes; the ETag is their sha256."}},
)
def download_asset(session: SessionDep, user: CurrentUser, asset_id: AssetId) -> StreamingResponse:
    """The asset's bytes, streamed. The blob is opened before answering, so a concurrent delete cannot cut it."""
    asset = access.asset(session, user, asset_id)
    handle = get_blob_store().open(asset.blob_hash)
    headers = {
        "Content-Length": str(asset.size),
        "Content-Disposition": _attachment(asset.name),
        "ETag": f'"{asset.blob_hash}"',
    }
    return StreamingResponse(_file_chunks(handle), media_type=UPLOAD_MEDIA_TYPE, headers=headers)


@router.post("/{asset_id}/tags")
def tag_asset(session: SessionDep, user: CurrentUser, asset_id: AssetId, body: TagModel) -> AssetPublic:
    """Add a tag (idempotent)."""
    return AssetPublic.model_validate(assets.tag_asset(session, user, asset_id, [body.tag]))


@router.delete("/{asset_id}/tags/{tag}", status_code=status.HTTP_204_NO_CONTENT)
def untag_asset(
    session: SessionDep,
    user: CurrentUser,
    asset_id: AssetId,
    tag: Annotated[str, Path(min_length=1, max_length=IDENT_MAX, pattern=IDENT_PATTERN, description="The tag.")],
) -> None:
    """Remove a tag (idempotent)."""
    assets.untag_asset(session, user, asset_id, [tag])


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(session: SessionDep, user: CurrentUser, asset_id: AssetId) -> None:
    """Delete an asset; its blob goes too once no other asset references it."""
    assets.delete_asset(session, user, asset_id)



def _file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        yield from iter(lambda: handle.read(CHUNK), b"")


def _attachment(filename: str) -> str:
    """A Content-Disposition header that survives any file name (RFC 6266 / 5987)."""
    quoted = quote(filename, safe="")
    if quoted == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename*=utf-8''{quoted}"
