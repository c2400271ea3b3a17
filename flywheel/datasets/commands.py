"""Datasets: episodes of robot data in LeRobot v2.1 layout, appended in chunks, edited by metadata.

Usage:
    flywheel dataset create demos --features features.yaml --fps 50 --robot-type so100
    flywheel dataset create pusht --from ./lerobot/pusht            # upload a LeRobot v2.1 (or Flywheel) folder
    flywheel dataset record arm --source sine --episodes 5 --frames 100 --task wave   # creates it if new
    flywheel dataset import runs episodes.jsonl                      # RLDS JSONL; .tfrecord, rosbag2 too
    flywheel dataset import bag ./run1 --fps 30 --topic /joint_states:observation.state:position \\
        --topic /cmd_vel:action:linear,angular
    flywheel dataset append arm more.tfrecord                        # a new chunk; files never rewritten
    flywheel dataset query arm --success yes --chunk 1 --after 2025-01-01T00:00:00Z --json
    flywheel dataset trim arm 3 --start 10 --end 150
    flywheel dataset delete-episodes arm 4 7 && flywheel dataset undelete arm 7
    flywheel dataset compact arm                                     # or: --all-due (the periodic job)
    flywheel dataset verify arm
    flywheel dataset export arm --format lerobot --output ./arm-lerobot
    flywheel dataset stats arm --json
    flywheel dataset render arm 3 --output ep3.gif
    flywheel dataset delete arm --yes
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from flywheel.cli_output import (
    DatasetArg,
    DescriptionOpt,
    JsonOpt,
    NameArg,
    YesOpt,
    details,
    emit,
    err_console,
    next_steps,
    say,
    show,
    table,
)
from flywheel.datasets import catalog
from flywheel.datasets.schemas import (
    DatasetCreate,
    DatasetPublic,
    EpisodePublic,
    EpisodeQuery,
    ImportPublic,
)
from flywheel.datasets.sources import make_source
from flywheel.errors import InvalidInput
from flywheel.platform.commands._identity import user_session

app = typer.Typer(help="Datasets: record, import, edit, compact and export episodes.", no_args_is_help=True)

EpisodeArg = Annotated[int, typer.Argument(metavar="EPISODE", help="Episode index.", min=0)]
EpisodesArg = Annotated[list[int], typer.Argument(metavar="EPISODE...", help="Episode indexes.")]
SourceArg = Annotated[Path, typer.Argument(metavar="SOURCE", help="A dataset folder, RLDS/TFRecord file or rosbag2.")]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", help="flywheel, lerobot, rlds-jsonl, tfrecord or rosbag; default: from the path.",
    show_default=False)]
FpsOpt = Annotated[int | None, typer.Option(help="Frame rate (rosbags; RLDS files without one).", show_default=False)]
TopicOpt = Annotated[list[str] | None, typer.Option(
    "--topic", metavar="TOPIC:FEATURE[:FIELD[:DTYPE]]",
    help="Map a rosbag topic to a feature, e.g. /joint_states:observation.state:position. Repeat.",
    show_default=False)]
TaskOpt = Annotated[str, typer.Option(help="Task of the episodes (rosbag, record).")]


@contextmanager
def _busy(message: str) -> Iterator[None]:
    """A spinner on stderr while a long operation runs (only on a terminal: stdout stays clean for --json)."""
    err = err_console()
    if not err.is_terminal:
        yield
        return
    with err.status(message):
        yield


def _read_features(path: Path) -> dict[str, Any]:
    """Features from a JSON or YAML file: a mapping of feature -> {dtype, shape, names}, or {features: ...}."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", field="features", allowed="a JSON or YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not JSON or YAML: {exc}", field="features") from exc
    if isinstance(data, dict) and isinstance(data.get("features"), dict):
        data = data["features"]
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a mapping of feature -> {{dtype, shape, names}}", field="features",
                           allowed='e.g. {"action": {"dtype": "float32", "shape": [2]}}')
    return data


def _summary(public: DatasetPublic) -> str:
    kind = "eval" if public.is_eval else "dataset"
    return (f"{kind} {public.name} ({public.id}): {public.episodes} episodes, {public.frames} frames, "
            f"{public.chunks} chunk(s), {public.deleted_episodes} soft-deleted, {public.fps} fps")


def _say_import(result: ImportPublic, verb: str) -> None:
    where = f" as chunk {result.chunk_id}" if result.chunk_id is not None else ""
    say(f"{verb} {result.episodes_added} episode(s), {result.frames_added} frames ({result.format}){where}.")
    for line in result.report:
        say(f"  {line}" if not line.startswith("  ") else line)
    say(_summary(result.dataset))


@app.command("create")
def create(
    name: NameArg,
    features: Annotated[Path | None, typer.Option(help="JSON/YAML file of features.", show_default=False)] = None,
    fps: Annotated[int, typer.Option(help="Frames per second.")] = 50,
    robot_type: Annotated[str, typer.Option("--robot-type", help="Robot type, free text.")] = "unknown",
    source: Annotated[Path | None, typer.Option(
        "--from", help="Upload a LeRobot v2.1 or Flywheel dataset folder instead.", show_default=False)] = None,
    description: DescriptionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an empty dataset from a features file, or one holding a local folder's episodes (--from)."""
    if (features is None) == (source is None):
        raise InvalidInput("give either --features FILE or --from FOLDER", field="features",
                           allowed="--features FILE | --from FOLDER")
    if source is not None:
        with _busy(f"uploading {source}"), user_session() as (session, user):
            result = catalog.create_from_folder(session, user, name=name, source=source,
                                                description=description or "")
        emit(result, as_json, lambda: _say_import(result, "Uploaded"))
        return
    data = DatasetCreate(name=name, features=_read_features(features or Path()), fps=fps, robot_type=robot_type,
                         description=description or "")
    with user_session() as (session, user):
        public = catalog.dataset_public(session, catalog.create_dataset(session, user, data))

    def render() -> None:
        say(f"Created {_summary(public)}.")
        next_steps(f"flywheel dataset record {public.name} --source sine",
                   f"flywheel dataset append {public.name} FILE")

    emit(public, as_json, render)


@app.command("list")
def list_(
    evals: Annotated[bool | None, typer.Option("--evals/--no-evals", help="Only evals / only plain datasets.",
                                               show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """List your datasets and evals."""
    with user_session() as (session, user):
        found = catalog.datasets_public(session, catalog.list_datasets(session, user, evals=evals))

    def render() -> None:
        if not found:
            say("No datasets yet: `flywheel dataset create` or `flywheel dataset record` makes one.")
            return
        rows = [(d.id, d.name, "eval" if d.is_eval else "dataset", d.episodes, d.frames, d.chunks,
                 d.deleted_episodes, d.fps, d.created_at) for d in found]
        show(table(None, ["id", "name", "kind", "episodes", "frames", "chunks", "deleted", "fps", "created"], rows))

    emit(found, as_json, render)


@app.command("show")
def show_(dataset: DatasetArg, as_json: JsonOpt = False) -> None:
    """Show a dataset: counts, features, provenance."""
    with user_session() as (session, user):
        public = catalog.dataset_public(session, catalog.get_dataset(session, user, dataset))

    def render() -> None:
        feats = ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in public.features.items())
        fields = [("id", public.id), ("kind", "eval" if public.is_eval else "dataset"),
                  ("description", public.description), ("episodes", public.episodes),
                  ("soft-deleted", public.deleted_episodes), ("frames", public.frames), ("chunks", public.chunks),
                  ("fps", public.fps), ("robot type", public.robot_type), ("features", feats),
                  ("folder", public.root_path), ("created", public.created_at)]
        if public.is_eval:
            fields += [("experiment", public.generated_by_experiment_id),
                       ("iteration", public.generated_by_iteration_id), ("job", public.generated_by_job_id)]
        show(details(public.name, fields))

    emit(public, as_json, render)


@app.command("record")
def record(
    dataset: DatasetArg,
    source: Annotated[str, typer.Option(help="sine, sine-camera or expert:<env id>.")] = "sine",
    episodes: Annotated[int, typer.Option(help="Episodes to record.")] = 3,
    frames: Annotated[int, typer.Option(help="The most frames per episode.")] = 100,
    task: TaskOpt = "record",
    seed: Annotated[int, typer.Option(help="Seed of the scripted source.")] = 0,
    fps: Annotated[int, typer.Option(help="Frame rate of a dataset created here.")] = 50,
    realtime: Annotated[bool, typer.Option("--realtime/--fast", help="Sample on the wall clock (skew measured) "
                                           "or as fast as the source goes.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Record episodes from a scripted source as a new chunk (the dataset is created if it does not exist)."""
    src = make_source(source, seed=seed, fps=fps)
    with _busy(f"recording {episodes} episode(s) from {source}"), user_session() as (session, user):
        result = catalog.record(session, user, dataset, src, episodes=episodes, frames=frames, task=task,
                                realtime=realtime, create=True, fps=fps)
    emit(result, as_json, lambda: _say_import(result, "Recorded"))


@app.command("import")
def import_(
    name: NameArg, source: SourceArg, fmt: FormatOpt = None, fps: FpsOpt = None, topic: TopicOpt = None,
    task: TaskOpt = "", robot_type: Annotated[str | None, typer.Option("--robot-type", show_default=False)] = None,
    description: DescriptionOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a dataset from an RLDS JSONL / TFRecord file, a rosbag2, or a dataset folder; prints the report."""
    with _busy(f"importing {source}"), user_session() as (session, user):
        result = catalog.import_dataset(session, user, name=name, source=source, fmt=fmt, fps=fps,
                                        topics=topic or [], task=task, robot_type=robot_type,
                                        description=description or "")
    emit(result, as_json, lambda: _say_import(result, "Imported"))


@app.command("append")
def append(
    dataset: DatasetArg, source: SourceArg, fmt: FormatOpt = None, fps: FpsOpt = None, topic: TopicOpt = None,
    task: TaskOpt = "", as_json: JsonOpt = False,
) -> None:
    """Append episodes from a folder or file as a new chunk (features must match; files are never rewritten)."""
    with _busy(f"appending {source}"), user_session() as (session, user):
        result = catalog.append_from(session, user, dataset, source=source, fmt=fmt, fps=fps, topics=topic or [],
                                     task=task)
    emit(result, as_json, lambda: _say_import(result, "Appended"))


@app.command("trim")
def trim(
    dataset: DatasetArg, episode: EpisodeArg,
    start: Annotated[int, typer.Option(help="First visible frame.")],
    end: Annotated[int, typer.Option(help="End of the visible frames (exclusive).")],
    as_json: JsonOpt = False,
) -> None:
    """Show only frames START..END of an episode (metadata only; the file is kept until compaction)."""
    with user_session() as (session, user):
        ep = EpisodePublic.model_validate(catalog.trim(session, user, dataset, episode, start_frame=start,
                                                       end_frame=end))
    emit(ep, as_json, lambda: say(f"Episode {ep.episode_index} now shows frames {ep.start_frame}..{ep.end_frame} "
                                  f"of {ep.total_frames}."))


@app.command("delete-episodes")
def delete_episodes(dataset: DatasetArg, episodes: EpisodesArg, as_json: JsonOpt = False) -> None:
    """Soft-delete episodes: hidden at once, files kept until compaction (undo with `undelete`)."""
    with user_session() as (session, user):
        eps = [EpisodePublic.model_validate(e) for e in catalog.soft_delete(session, user, dataset, episodes)]
    emit(eps, as_json, lambda: say(f"Soft-deleted episode(s) {', '.join(str(e.episode_index) for e in eps)}."))


@app.command("undelete")
def undelete(dataset: DatasetArg, episodes: EpisodesArg, as_json: JsonOpt = False) -> None:
    """Make soft-deleted episodes visible again."""
    with user_session() as (session, user):
        eps = [EpisodePublic.model_validate(e) for e in catalog.undelete(session, user, dataset, episodes)]
    emit(eps, as_json, lambda: say(f"Restored episode(s) {', '.join(str(e.episode_index) for e in eps)}."))


@app.command("query")
def query(
    dataset: DatasetArg,
    after: Annotated[datetime | None, typer.Option(help="Created at or after (ISO 8601, UTC if no zone).",
                                                   formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
                                                   show_default=False)] = None,
    before: Annotated[datetime | None, typer.Option(help="Created before.", show_default=False,
                                                    formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
                                                             "%Y-%m-%d"])] = None,
    success: Annotated[str | None, typer.Option(help="yes, no or unknown.", show_default=False)] = None,
    task: Annotated[list[str] | None, typer.Option(help="A task. Repeat.", show_default=False)] = None,
    chunk: Annotated[list[int] | None, typer.Option(help="A chunk id. Repeat.", show_default=False)] = None,
    deleted: Annotated[str, typer.Option(help="Soft-deleted episodes: no, yes or any.")] = "no",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Find episodes by time range, success, task, chunk and deleted flag (from the indexed catalog)."""
    from datetime import UTC

    def aware(moment: datetime | None) -> datetime | None:
        return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment

    q = EpisodeQuery.model_validate({"created_after": aware(after), "created_before": aware(before),
                                     "success": success, "task": task, "chunk_id": chunk, "deleted": deleted,
                                     "limit": limit})
    with user_session() as (session, user):
        eps = [EpisodePublic.model_validate(e) for e in catalog.query_episodes(session, user, dataset, q)]

    def render() -> None:
        if not eps:
            say("No episodes match.")
            return
        rows = [(e.episode_index, e.chunk_id, e.task, f"{e.start_frame}..{e.end_frame}/{e.total_frames}",
                 {True: "yes", False: "no", None: "—"}[e.success], "yes" if e.soft_deleted else "",
                 e.source, e.created_at) for e in eps]
        show(table(None, ["episode", "chunk", "task", "frames", "success", "deleted", "source", "created"], rows))

    emit(eps, as_json, render)


@app.command("compact")
def compact(
    dataset: Annotated[str | None, typer.Argument(metavar="[DATASET]", help="Dataset name or id (dst_…).",
                                                  show_default=False)] = None,
    all_due: Annotated[bool, typer.Option("--all-due", help="Compact each of your datasets that is due.")] = False,
    min_fraction: Annotated[float, typer.Option(help="With --all-due: share of hidden frames that is due.")] = (
        catalog.COMPACT_DUE_FRACTION),
    as_json: JsonOpt = False,
) -> None:
    """Hard delete: rewrite without soft-deleted episodes and with trims applied (crash-safe)."""
    if (dataset is None) == (not all_due):
        raise InvalidInput("give a DATASET or --all-due", field="dataset", allowed="DATASET | --all-due")
    with _busy("compacting"), user_session() as (session, user):
        if all_due:
            reports = catalog.compact_due(session, min_deleted_fraction=min_fraction, user=user)
        else:
            reports = [catalog.compact(session, user, dataset or "")]

    def render() -> None:
        if not reports:
            say(f"Nothing is due: no dataset hides {min_fraction:.0%} of its frames.")
        for r in reports:
            say(f"Compacted {r.dataset_id}: {r.episodes_before} -> {r.episodes_after} episodes, "
                f"{r.frames_before} -> {r.frames_after} frames, {len(r.removed_episode_ids)} removed for good.")

    emit(reports if all_due else reports[0], as_json, render)


@app.command("verify")
def verify(dataset: DatasetArg, as_json: JsonOpt = False) -> None:
    """Read every episode and report damaged ones by index; exit code 1 if any is damaged."""
    with _busy("verifying"), user_session() as (session, user):
        report = catalog.verify(session, user, dataset)

    def render() -> None:
        if report.ok:
            say(f"OK: {report.episodes_checked} episode(s) read in full, none damaged.")
        else:
            say(f"DAMAGED: episode(s) {', '.join(map(str, report.damaged_episodes))} of {report.episodes_checked}.")
        for p in report.problems:
            say(f"  {p.severity}: " + (f"episode {p.episode_index}: " if p.episode_index is not None else "")
                + p.message)

    emit(report, as_json, render)
    if not report.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    dataset: DatasetArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="lerobot, rlds-jsonl or tfrecord.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder (lerobot) or file; default "
                                                "under <home>/exports.", show_default=False)] = None,
    origin: Annotated[str | None, typer.Option(help="Origin tag of the manifest; default the dataset name.",
                                               show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export with trims and soft deletes applied, plus a manifest (origin, counts, hashes)."""
    with _busy(f"exporting as {fmt}"), user_session() as (session, user):
        result = catalog.export(session, user, dataset, fmt=fmt, out=output, origin=origin)
    emit(result, as_json, lambda: say(f"Exported {result.episodes} episode(s), {result.frames} frames as "
                                      f"{result.format} to {result.path} (manifest {result.manifest_path})."))


@app.command("stats")
def stats(dataset: DatasetArg, as_json: JsonOpt = False) -> None:
    """Feature statistics (min/max/mean/std) over the visible frames, for normalisation."""
    with _busy("computing statistics"), user_session() as (session, user):
        result = catalog.stats(session, user, dataset)

    def fmt(values: list[Any]) -> str:
        import numpy as np

        flat = json.dumps([float(f"{v:.4g}") for v in np.ravel(np.asarray(values, dtype=np.float64))])
        return flat if len(flat) <= 40 else flat[:39] + "…"

    def render() -> None:
        say(f"{result.episodes} visible episode(s), {result.frames} frames.")
        rows = [(k, fmt(s.min), fmt(s.max), fmt(s.mean), fmt(s.std)) for k, s in result.features.items()]
        show(table(None, ["feature", "min", "max", "mean", "std"], rows))

    emit(result, as_json, render)


@app.command("render")
def render(
    dataset: DatasetArg, episode: EpisodeArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The clip: .mp4 or .gif.")],
    key: Annotated[str | None, typer.Option(help="Camera feature; default the first.", show_default=False)] = None,
    max_seconds: Annotated[float, typer.Option(help="The longest clip, in seconds.")] = 10.0,
) -> None:
    """Render an episode's camera feature (trim applied) to a short mp4 or GIF."""
    with _busy("rendering"), user_session() as (session, user):
        path, n = catalog.render(session, user, dataset, episode, out=output, key=key, max_seconds=max_seconds)
    say(f"Rendered episode {episode} to {path} ({n} frames).")


@app.command("delete")
def delete(dataset: DatasetArg, yes: YesOpt = False) -> None:
    """Delete a dataset: its catalog entry, then its folder."""
    with user_session() as (session, user):
        public = catalog.dataset_public(session, catalog.get_dataset(session, user, dataset))
    if not yes:
        typer.confirm(f"Delete {_summary(public)}?", abort=True)
    with user_session() as (session, user):
        catalog.delete_dataset(session, user, public.id)
    say(f"Deleted {public.name} ({public.id}) and its folder.")
