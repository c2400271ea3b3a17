"""Datasets: episodes of robot data in LeRobot v2.1 layout; evals are datasets a job produced.

Uploads send the bytes as the body: a tar archive (optionally gzip-compressed) of a Flywheel or LeRobot
v2.1 folder, or an RLDS JSONL / TFRecord / rosbag2 (MCAP or sqlite3) file; options travel in the query
string. Exports are written on the server under `<home>/exports/<dataset id>/`.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1
    curl -H "$H" -H 'Content-Type: application/json' -X POST $API/datasets \\
         -d '{"name": "demos", "fps": 50, "features": {"action": {"dtype": "float32", "shape": [2]}}}'
    tar -C lerobot/pusht -cf - . | curl -H "$H" -H 'Content-Type: application/octet-stream' \\
         --data-binary @- "$API/datasets/upload?name=pusht"
    curl -H "$H" -H 'Content-Type: application/octet-stream' --data-binary @episodes.jsonl \\
         "$API/datasets/demos/append?format=rlds-jsonl"
    curl -H "$H" "$API/datasets/demos/episodes?success=yes&chunk_id=1&deleted=no"
    curl -H "$H" -H 'Content-Type: application/json' -X POST $API/datasets/demos/episodes/3/trim \\
         -d '{"start_frame": 10, "end_frame": 150}'
    curl -H "$H" -H 'Content-Type: application/json' -X POST $API/datasets/demos/episodes/delete \\
         -d '{"episode_indexes": [4]}'
    curl -H "$H" -X POST $API/datasets/demos/compact
    curl -H "$H" -H 'Content-Type: application/json' -X POST $API/datasets/demos/export -d '{"format": "lerobot"}'
    curl -H "$H" -o ep3.gif "$API/datasets/demos/episodes/3/render?format=gif"
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import Field

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.errors import ErrorBody
from flywheel.api.params import INDEX_MAX, DatasetIdent, ident_query
from flywheel.api.streaming import body_chunks
from flywheel.datasets import catalog
from flywheel.datasets.format import INFO_PATH
from flywheel.datasets.schemas import (
    CompactPublic,
    DatasetCreate,
    DatasetPublic,
    DatasetUpdate,
    EpisodePublic,
    EpisodeQuery,
    EpisodeSelection,
    ExportFormat,
    ExportPublic,
    ImportPublic,
    SourceFormat,
    StatsPublic,
    SuccessLabel,
    TrimRequest,
    VerifyPublic,
)
from flywheel.datasets.sources import make_source
from flywheel.errors import InvalidInput
from flywheel.platform.schemas import _NAME_CHECK, _Input, name_field
from flywheel.settings import get_settings
from flywheel.store import new_id

router = APIRouter(prefix="/datasets", tags=["datasets"])

CONFLICT = {409: {"model": ErrorBody, "description": "The name is taken, the dataset is an eval, or it is busy."}}
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_UPLOAD = {"requestBody": {"required": True, "content": _BINARY,
                           "description": "A tar archive of a dataset folder, or an RLDS/TFRecord/rosbag2 file."}}
EpisodeIndex = Annotated[int, Field(ge=0, le=INDEX_MAX, description="The episode's index in the dataset.")]
Topic = Annotated[str, Field(min_length=3, max_length=500, pattern=r"^[^\x00-\x1f]+$")]


class UploadOptions(_Input):
    """Where uploaded episodes go and how to read them."""

    name: Annotated[str, _NAME_CHECK] = name_field()
    description: str = Field("", max_length=100_000)
    format: SourceFormat = Field("lerobot", description="How to read the body; folders come as a tar archive.")
    fps: int | None = Field(None, ge=1, le=10_000, description="Frame rate (rosbags; RLDS without a header).")
    task: str = Field("", max_length=10_000, description="Task of rosbag episodes.")
    topic: list[Topic] = Field(default_factory=list, max_length=100,
                               description="rosbag mapping TOPIC:FEATURE[:FIELD[:DTYPE]]; repeat.")


class AppendOptions(_Input):
    """How to read the appended episodes."""

    format: SourceFormat = Field(description="How to read the body; folders come as a tar archive.")
    fps: int | None = Field(None, ge=1, le=10_000)
    task: str = Field("", max_length=10_000)
    topic: list[Topic] = Field(default_factory=list, max_length=100)


class RecordRequest(_Input):
    """Record episodes from a scripted source (on a virtual clock: as fast as the source goes)."""

    source: str = Field("sine", min_length=1, max_length=200, description="`sine`, `sine-camera` or `expert:<env id>`.")
    episodes: int = Field(1, ge=1, le=100)
    frames: int = Field(50, ge=1, le=10_000, description="The most frames per episode.")
    task: str = Field("record", min_length=1, max_length=10_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class ExportRequest(_Input):
    """Export format and manifest origin tag."""

    format: ExportFormat
    origin: str | None = Field(None, min_length=1, max_length=200, description="Default: the dataset's name.")


# -- datasets ---------------------------------------------------------------------------------------


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
def create_dataset(session: SessionDep, user: CurrentUser, body: DatasetCreate) -> DatasetPublic:
    """Create an empty dataset with its features, fps and robot type. Evals cannot be created here (409)."""
    return catalog.dataset_public(session, catalog.create_dataset(session, user, body))


@router.get("")
def list_datasets(
    session: SessionDep, user: CurrentUser,
    evals: Annotated[bool | None, Query(description="Only evals (true) or only plain datasets (false).")] = None,
) -> list[DatasetPublic]:
    """Your datasets and evals, oldest first, with their episode counts."""
    return catalog.datasets_public(session, catalog.list_datasets(session, user, evals=evals))


@router.post("/upload", status_code=status.HTTP_201_CREATED, responses=CONFLICT, openapi_extra=_UPLOAD)
async def upload_dataset(
    request: Request, session: SessionDep, user: CurrentUser, options: Annotated[UploadOptions, Query()]
) -> ImportPublic:
    """Create a dataset from uploaded episodes: a tar of a LeRobot v2.1 or Flywheel folder, or an RLDS file."""

    def run(path: Path) -> ImportPublic:
        if options.format in ("lerobot", "flywheel"):
            return catalog.create_from_folder(session, user, name=options.name, source=path,
                                              description=options.description)
        return catalog.import_dataset(session, user, name=options.name, source=path, fmt=options.format,
                                      fps=options.fps, topics=options.topic, task=options.task,
                                      description=options.description)

    return await _with_body(request, options.format, run)


@router.get("/{dataset}")
def read_dataset(session: SessionDep, user: CurrentUser, dataset: DatasetIdent) -> DatasetPublic:
    """One dataset, by id or name."""
    return catalog.dataset_public(session, catalog.get_dataset(session, user, dataset))


@router.patch("/{dataset}", responses=CONFLICT)
def update_dataset(session: SessionDep, user: CurrentUser, dataset: DatasetIdent, body: DatasetUpdate) -> DatasetPublic:
    """Rename a dataset or change its description."""
    return catalog.dataset_public(session, catalog.update_dataset(session, user, dataset, body))


@router.delete("/{dataset}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(session: SessionDep, user: CurrentUser, dataset: DatasetIdent) -> None:
    """Delete a dataset: its row now, its folder once the deletion has committed."""
    catalog.delete_dataset(session, user, dataset)


@router.post("/{dataset}/append", responses=CONFLICT, openapi_extra=_UPLOAD)
async def append_episodes(
    request: Request, session: SessionDep, user: CurrentUser, dataset: DatasetIdent,
    options: Annotated[AppendOptions, Query()],
) -> ImportPublic:
    """Append uploaded episodes as a new chunk; their features must match (409 for an eval)."""
    catalog.dataset_root(catalog.get_dataset(session, user, dataset))  # 404/409 before reading the body

    def run(path: Path) -> ImportPublic:
        return catalog.append_from(session, user, dataset, source=path, fmt=options.format, fps=options.fps,
                                   topics=options.topic, task=options.task)

    return await _with_body(request, options.format, run)


@router.post("/{dataset}/record", responses=CONFLICT)
def record_episodes(session: SessionDep, user: CurrentUser, dataset: DatasetIdent, body: RecordRequest) -> ImportPublic:
    """Record episodes from a scripted source into the dataset, as a new chunk (409 for an eval)."""
    ds = catalog.get_dataset(session, user, dataset)
    catalog.dataset_root(ds)
    source = make_source(body.source, seed=body.seed, fps=ds.fps)
    return catalog.record(session, user, dataset, source, episodes=body.episodes, frames=body.frames,
                          task=body.task, realtime=False)


# -- episodes ---------------------------------------------------------------------------------------


@router.get("/{dataset}/episodes")
def query_episodes(
    session: SessionDep, user: CurrentUser, dataset: DatasetIdent, query: Annotated[EpisodeQuery, Query()]
) -> list[EpisodePublic]:
    """Episodes by time range, success, task, chunk and deleted flag (from the indexed database mirror)."""
    return [EpisodePublic.model_validate(e) for e in catalog.query_episodes(session, user, dataset, query)]


@router.post("/{dataset}/episodes/delete")
def delete_episodes(
    session: SessionDep, user: CurrentUser, dataset: DatasetIdent, body: EpisodeSelection
) -> list[EpisodePublic]:
    """Soft-delete episodes: hidden at once, files kept until compaction."""
    return [EpisodePublic.model_validate(e) for e in catalog.soft_delete(session, user, dataset, body.episode_indexes)]


@router.post("/{dataset}/episodes/undelete")
def undelete_episodes(
    session: SessionDep, user: CurrentUser, dataset: DatasetIdent, body: EpisodeSelection
) -> list[EpisodePublic]:
    """Make soft-deleted episodes visible again."""
    return [EpisodePublic.model_validate(e) for e in catalog.undelete(session, user, dataset, body.episode_indexes)]


@router.get("/{dataset}/episodes/{episode_index}")
def read_episode(session: SessionDep, user: CurrentUser, dataset: DatasetIdent,
                 episode_index: EpisodeIndex) -> EpisodePublic:
    """One episode's record."""
    return EpisodePublic.model_validate(catalog.get_episode(session, user, dataset, episode_index))


@router.post("/{dataset}/episodes/{episode_index}/trim")
def trim_episode(session: SessionDep, user: CurrentUser, dataset: DatasetIdent, episode_index: EpisodeIndex,
                 body: TrimRequest) -> EpisodePublic:
    """Show only frames start_frame..end_frame (end exclusive); the file is kept."""
    return EpisodePublic.model_validate(catalog.trim(session, user, dataset, episode_index,
                                                     start_frame=body.start_frame, end_frame=body.end_frame))


@router.put("/{dataset}/episodes/{episode_index}/success")
def label_episode(session: SessionDep, user: CurrentUser, dataset: DatasetIdent, episode_index: EpisodeIndex,
                  body: SuccessLabel) -> EpisodePublic:
    """Label an episode a success, a failure, or unknown (null)."""
    return EpisodePublic.model_validate(catalog.set_success(session, user, dataset, episode_index, body.success))


@router.get("/{dataset}/episodes/{episode_index}/render",
            responses={200: {"content": {"image/gif": {}, "video/mp4": {}}, "description": "The clip."}})
def render_episode(
    session: SessionDep, user: CurrentUser, dataset: DatasetIdent, episode_index: EpisodeIndex,
    format: Annotated[Literal["mp4", "gif"], Query(description="Clip format.")] = "mp4",
    key: Annotated[str | None, ident_query("The camera feature; default the first.")] = None,
    max_seconds: Annotated[float, Query(gt=0, le=600, description="The longest clip, in seconds.")] = 10.0,
) -> Response:
    """An episode's camera feature (trim applied) as a short mp4 or GIF clip."""
    scratch = _scratch()
    try:
        path, _ = catalog.render(session, user, dataset, episode_index, out=scratch / f"clip.{format}", key=key,
                                 fmt=format, max_seconds=max_seconds)
        data = path.read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Response(data, media_type="image/gif" if format == "gif" else "video/mp4")


# -- maintenance and interop ------------------------------------------------------------------------


@router.post("/compact-due", responses=CONFLICT)
def compact_due(
    session: SessionDep, user: CurrentUser,
    min_deleted_fraction: Annotated[float, Query(gt=0, le=1, description="Share of hidden frames that is due.")] = (
        catalog.COMPACT_DUE_FRACTION),
) -> list[CompactPublic]:
    """Compact each of your datasets whose soft-deleted and trimmed-away frames reach the fraction."""
    return catalog.compact_due(session, min_deleted_fraction=min_deleted_fraction, user=user)


@router.post("/{dataset}/compact", responses=CONFLICT)
def compact_dataset(session: SessionDep, user: CurrentUser, dataset: DatasetIdent) -> CompactPublic:
    """Hard delete: rewrite without soft-deleted episodes and with trims applied (crash-safe)."""
    return catalog.compact(session, user, dataset)


@router.get("/{dataset}/verify")
def verify_dataset(session: SessionDep, user: CurrentUser, dataset: DatasetIdent) -> VerifyPublic:
    """Read every episode and report the damaged ones by index."""
    return catalog.verify(session, user, dataset)


@router.get("/{dataset}/stats")
def dataset_stats(session: SessionDep, user: CurrentUser, dataset: DatasetIdent) -> StatsPublic:
    """Feature statistics over the visible frames, for normalisation."""
    return catalog.stats(session, user, dataset)


@router.post("/{dataset}/export", responses=CONFLICT)
def export_dataset(session: SessionDep, user: CurrentUser, dataset: DatasetIdent, body: ExportRequest) -> ExportPublic:
    """Export (trims and soft deletes applied) as LeRobot v2.1, RLDS JSONL or TFRecord, with a manifest."""
    return catalog.export(session, user, dataset, fmt=body.format, origin=body.origin)


# -- bodies -----------------------------------------------------------------------------------------


def _scratch() -> Path:
    path = get_settings().home.absolute() / "tmp" / new_id("upl")
    path.mkdir(parents=True)
    return path


async def _with_body(request: Request, fmt: str, run: Any) -> Any:
    """Save the body in a scratch folder (unpacking a tar), call ``run(path)`` in a worker thread, clean up."""

    def work() -> Any:
        scratch = _scratch()
        try:
            raw = scratch / "body"
            with raw.open("wb") as out:
                for chunk in body_chunks(request):
                    out.write(chunk)
            return run(_unpack(raw, fmt, scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return await anyio.to_thread.run_sync(work)


def _unpack(raw: Path, fmt: str, scratch: Path) -> Path:
    """The source path of an uploaded body: a folder for tar archives, else the file with a telling suffix."""
    if fmt in ("lerobot", "flywheel") or (fmt == "rosbag" and tarfile.is_tarfile(raw)):
        target = scratch / "folder"
        try:
            with tarfile.open(raw, "r:*") as archive:
                archive.extractall(target, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidInput(f"the body is not a readable tar archive: {exc}", field="body",
                               allowed="a tar archive (optionally gzip-compressed) of a dataset folder") from exc
        if fmt == "rosbag":
            return target
        if not (target / INFO_PATH).is_file():
            inner = [p.parent.parent for p in target.glob(f"*/{INFO_PATH}")]
            if len(inner) != 1:
                raise InvalidInput(f"the archive holds no {INFO_PATH} at its top or one folder down", field="body",
                                   allowed="a tar archive of one dataset folder")
            target = inner[0]
        return target
    with raw.open("rb") as f:
        head = f.read(8)
    suffix = {"rlds-jsonl": ".jsonl", "tfrecord": ".tfrecord"}.get(fmt) or (
        ".mcap" if head.startswith(b"\x89MCAP") else ".db3")
    return raw.rename(raw.with_suffix(suffix))

