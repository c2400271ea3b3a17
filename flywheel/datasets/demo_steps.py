"""The demo's dataset steps: record, append a chunk, trim, soft-delete, compact, export LeRobot v2.1 and RLDS.

Each step is a function of the demo's shared state (``flywheel.demo.Demo``) calling the catalog, as the
CLI and the API do; ``flywheel.demo.STEPS`` includes ``DATASET_STEPS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.datasets import catalog
from flywheel.datasets.schemas import EpisodeQuery
from flywheel.datasets.sources import SineArm
from flywheel.platform.commands._identity import user_session

DATASET = "arm-demos"
FPS = 50
FRAMES = 50


def _episodes_line(session: Any, user: Any) -> str:
    shown = catalog.query_episodes(session, user, DATASET, EpisodeQuery(deleted="any"))
    return "  ".join(f"#{e.episode_index}:c{e.chunk_id}:{e.start_frame}..{e.end_frame}"
                     + ("(deleted)" if e.soft_deleted else "") for e in shown)


def record_dataset(demo: Any) -> None:
    """Record a dataset of 4 episodes from a scripted sine-wave arm at 50 Hz (chunk 0)."""
    with user_session() as (session, user):
        result = catalog.record(session, user, DATASET, SineArm(seed=0, fps=FPS), episodes=4, frames=FRAMES,
                                task="wave", create=True, fps=FPS, robot_type="sine-arm")
        demo.ids["dataset"] = result.dataset.id
        skews = [e.max_skew_ms or 0.0 for e in catalog.query_episodes(session, user, DATASET)]
    demo.note(f"{DATASET} ({result.dataset.id}): {result.episodes_added} episodes x {FRAMES} frames at {FPS} Hz, "
              f"chunk {result.chunk_id}")
    demo.note(f"largest sampling skew per episode (ms): {', '.join(f'{s:.2f}' for s in skews)} (flagged above 5)")


def append_chunk(demo: Any) -> None:
    """Append a second chunk of 2 episodes; the files of chunk 0 are not rewritten."""
    with user_session() as (session, user):
        result = catalog.record(session, user, DATASET, SineArm(seed=1, fps=FPS), episodes=2, frames=FRAMES,
                                task="wave")
        line = _episodes_line(session, user)
    demo.note(f"chunk {result.chunk_id}: +{result.episodes_added} episodes; now {result.dataset.episodes} episodes, "
              f"{result.dataset.frames} frames")
    demo.note(f"episodes (index:chunk:visible frames): {line}")


def trim_and_delete(demo: Any) -> None:
    """Trim episode 1 to frames 10..40 and soft-delete episode 2 (metadata only, immediate)."""
    with user_session() as (session, user):
        ep = catalog.trim(session, user, DATASET, 1, start_frame=10, end_frame=40)
        catalog.soft_delete(session, user, DATASET, [2])
        visible = catalog.query_episodes(session, user, DATASET)
        line = _episodes_line(session, user)
    demo.note(f"episode 1 shows frames {ep.start_frame}..{ep.end_frame} of {ep.total_frames}; episode 2 is hidden")
    demo.note(f"query (deleted hidden): {[e.episode_index for e in visible]}")
    demo.note(f"episodes: {line}")


def compact_dataset(demo: Any) -> None:
    """Compact: rewrite without the deleted episode and with the trim applied, renumbered."""
    with user_session() as (session, user):
        report = catalog.compact(session, user, DATASET)
        line = _episodes_line(session, user)
    demo.note(f"{report.episodes_before} -> {report.episodes_after} episodes, {report.frames_before} -> "
              f"{report.frames_after} frames; old -> new index {report.index_map}")
    demo.note(f"episodes: {line}")


def export_dataset(demo: Any) -> None:
    """Export as a LeRobot v2.1 folder and as RLDS JSON Lines, each with a manifest."""
    out = demo.home / "exports"
    with user_session() as (session, user):
        lerobot = catalog.export(session, user, DATASET, fmt="lerobot", out=out / f"{DATASET}-lerobot")
        rlds = catalog.export(session, user, DATASET, fmt="rlds-jsonl", out=out / f"{DATASET}.rlds.jsonl")
    for result in (lerobot, rlds):
        files = result.manifest["files"]
        demo.note(f"{result.format}: {result.episodes} episodes, {result.frames} frames -> "
                  f"{_relative(demo, result.path)} ({len(files)} file(s) hashed in "
                  f"{_relative(demo, result.manifest_path)})")


def _relative(demo: Any, path: str) -> str:
    try:
        return str(Path(path).relative_to(demo.home.absolute()).as_posix())
    except ValueError:
        return path


#: The dataset steps, in order.
DATASET_STEPS = [record_dataset, append_chunk, trim_and_delete, compact_dataset, export_dataset]
