"""Assets: named, tagged files (checkpoints, ONNX exports, configs) stored once by their sha256.

Usage:
    flywheel asset upload exp_0123456789ab checkpoint.pt --iteration itr_0123456789ab --tag checkpoint
    flywheel asset list exp_0123456789ab --tag best
    flywheel asset list --iteration itr_0123456789ab --json
    flywheel asset download ast_0123456789ab --output ./model.pt
    flywheel asset tag ast_0123456789ab best final
    flywheel asset untag ast_0123456789ab final
    flywheel asset delete ast_0123456789ab --yes      # the bytes go once no other asset points at them
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from flywheel.blobs import CHUNK, fsync_dir, get_blob_store
from flywheel.cli_output import (
    AssetArg,
    JsonOpt,
    YesOpt,
    emit,
    err_console,
    human_size,
    say,
    show,
    table,
)
from flywheel.errors import Conflict, IntegrityError, InvalidInput
from flywheel.platform import access
from flywheel.platform.assets import (
    blob_reference_count,
    collect_garbage,
    delete_asset,
    list_assets,
    tag_asset,
    untag_asset,
    upload_asset,
)
from flywheel.platform.commands._identity import user_session
from flywheel.platform.schemas import AssetCreate, AssetPublic

app = typer.Typer(help="Assets: files stored once by hash; forks link them, never copy.", no_args_is_help=True)

TagsArg = Annotated[list[str], typer.Argument(metavar="TAG...", help="Tags: letters, digits and _ . : -")]


@app.command("upload")
def upload(
    experiment: Annotated[str, typer.Argument(metavar="EXPERIMENT", help="Experiment id (exp_…).")],
    path: Annotated[Path, typer.Argument(metavar="PATH", help="The file to upload.")],
    iteration: Annotated[
        str | None,
        typer.Option("--iteration", metavar="ITERATION", help="The iteration that produced it.", show_default=False),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: the file's name.", show_default=False)] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag. Repeat.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a file as an asset of an experiment (and optionally of one of its iterations)."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", field="path", allowed="an existing, readable file")
    data = AssetCreate(experiment_id=experiment, name=name or path.name, iteration_id=iteration, tags=tag or [])
    with user_session() as (session, user):
        public = AssetPublic.model_validate(upload_asset(session, user, data, _read_with_progress(path)))

    def render() -> None:
        say(f"Uploaded {public.name} as {public.id}: {human_size(public.size)}, sha256 {public.blob_hash[:12]}….")

    emit(public, as_json, render)


@app.command("list")
def list_(
    experiment: Annotated[
        str | None, typer.Argument(metavar="[EXPERIMENT]", help="Experiment id (exp_…).", show_default=False)
    ] = None,
    iteration: Annotated[
        str | None, typer.Option("--iteration", metavar="ITERATION", help="Only this iteration's.", show_default=False)
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", "-t", help="Only assets with this tag.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the assets of an experiment or an iteration."""
    with user_session() as (session, user):
        assets = [
            AssetPublic.model_validate(a)
            for a in list_assets(session, user, experiment_id=experiment, iteration_id=iteration, tag=tag)
        ]

    def render() -> None:
        if not assets:
            say("No assets match.")
            return
        rows = [(a.id, a.name, a.tags, human_size(a.size), a.blob_hash[:12], a.linked_from_id) for a in assets]
        show(table(None, ["id", "name", "tags", "size", "sha256", "linked from id"], rows))

    emit(assets, as_json, render)


@app.command("download")
def download(
    asset: AssetArg,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="A file, or a folder (ending in /), default: the asset's name here.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Download an asset's bytes, checking their sha256 on the way."""
    with user_session() as (session, user):
        found = AssetPublic.model_validate(access.asset(session, user, asset))
    filename = Path(found.name).name or found.id  # never a path from the name: "../x" lands here as "x"
    target = Path(output) if output else Path(filename)
    if target.is_dir() or (output or "").endswith(("/", os.sep)):
        target = target / filename
    if target.exists() and not force:
        raise Conflict(f"{target} already exists", hint="Pass --force to overwrite it, or --output another path.")
    _write_verified(found.blob_hash, found.size, target)
    say(f"Downloaded {found.name} ({human_size(found.size)}) to {target}.")


@app.command("tag")
def tag_(asset: AssetArg, tags: TagsArg, as_json: JsonOpt = False) -> None:
    """Add tags to an asset."""
    with user_session() as (session, user):
        public = AssetPublic.model_validate(tag_asset(session, user, asset, tags))
    emit(public, as_json, lambda: say(f"{public.name} ({public.id}) is tagged: {', '.join(public.tags)}."))


@app.command("untag")
def untag(asset: AssetArg, tags: TagsArg, as_json: JsonOpt = False) -> None:
    """Remove tags from an asset."""
    with user_session() as (session, user):
        public = AssetPublic.model_validate(untag_asset(session, user, asset, tags))
    emit(public, as_json, lambda: say(f"{public.name} ({public.id}) is tagged: {', '.join(public.tags) or 'nothing'}."))


@app.command("delete")
def delete(asset: AssetArg, yes: YesOpt = False) -> None:
    """Delete an asset; its bytes are removed once no other asset points at them."""
    with user_session() as (session, user):
        found = AssetPublic.model_validate(access.asset(session, user, asset))
        others = blob_reference_count(session, found.blob_hash) - 1
    if not yes:
        typer.confirm(f"Delete asset {found.name} ({found.id})?", abort=True)
    with user_session() as (session, user):
        delete_asset(session, user, found.id)
    kept = f"its bytes stay: {others} other asset(s) use them" if others else "its bytes are removed"
    say(f"Deleted asset {found.name} ({found.id}); {kept}.")


@app.command("gc")
def gc() -> None:
    """Remove stored bytes that no asset uses any more (left when a deletion met an upload in flight)."""
    with user_session() as (session, _user):
        removed = collect_garbage(session)
    say(f"Removed {len(removed)} unused blob(s)." if removed else "Nothing to remove: every stored blob is in use.")


def _progress() -> Progress:
    """A transfer progress bar on stderr that disappears when done (stdout stays clean for --json)."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    err = err_console()
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def _read_with_progress(path: Path) -> Iterator[bytes]:
    """The file's bytes in chunks, with a progress bar."""
    with _progress() as progress, path.open("rb") as handle:
        task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
        while chunk := handle.read(CHUNK):
            progress.advance(task, len(chunk))
            yield chunk


def _write_verified(digest: str, size: int, target: Path) -> None:
    """Copy a blob to `target` crash-safely (temp file, fsync, rename), refusing bytes that do not match."""
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _progress() as progress:
            os.fchmod(out.fileno(), 0o666 & ~_umask())
            task = progress.add_task(f"downloading {target.name}", total=size)
            for chunk in get_blob_store().iter_bytes(digest):
                hasher.update(chunk)
                out.write(chunk)
                progress.advance(task, len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if hasher.hexdigest() != digest:
            raise IntegrityError(f"blob {digest} is damaged: its bytes hash to {hasher.hexdigest()}")
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
