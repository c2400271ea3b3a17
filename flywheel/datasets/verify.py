"""Checking a dataset folder file by file; every problem names its episode and file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flywheel.datasets.format import EPISODES_PATH, DatasetCorruptError, load_info, user_features, video_file
from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.writer import uncommitted_files
from flywheel.errors import FlywheelError


@dataclass
class Problem:
    """One thing wrong with a dataset.

    Attributes:
        message: what is wrong.
        episode_index: the episode concerned, if any.
        path: the file concerned, if any.
        severity: "error" (data unreadable or inconsistent) or "warning" (leftovers, stale derived files).
    """

    message: str
    episode_index: int | None = None
    path: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"episode {self.episode_index}: " if self.episode_index is not None else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass
class VerifyReport:
    """The result of ``verify``.

    Attributes:
        root: the dataset folder.
        episodes_checked: committed episodes examined.
        problems: everything found, errors and warnings.
    """

    root: Path
    episodes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return not any(p.severity == "error" for p in self.problems)

    @property
    def damaged_episodes(self) -> list[int]:
        """Indexes of the episodes with an error."""
        return sorted({p.episode_index for p in self.problems if p.severity == "error" and p.episode_index is not None})


def verify(root: Path, *, check_videos: bool = True) -> VerifyReport:
    """Read every committed episode in full and report whatever is missing, truncated or inconsistent.

    Args:
        root: the dataset folder.
        check_videos: decode every mp4 and compare its frame count with the record (slower).

    Returns:
        A report; ``report.ok`` is False if any episode cannot be read as recorded.

    Example:
        >>> report = verify(Path("my_dataset"))  # doctest: +SKIP
        >>> report.ok, [str(p) for p in report.problems]  # doctest: +SKIP
        (False, ['error: episode 3: data/chunk-000/episode_000003.parquet is not a readable parquet file'])
    """
    root = Path(root)
    report = VerifyReport(root=root)
    try:
        load_info(root)
        reader = DatasetReader(root)
    except FlywheelError as exc:
        report.problems.append(Problem(exc.message, path=str(getattr(exc, "path", None) or root)))
        return report
    for rec in reader.records:
        report.episodes_checked += 1
        try:
            reader.read_columns(rec.episode_index)
        except DatasetCorruptError as exc:
            report.problems.append(Problem(exc.message, rec.episode_index, str(exc.path)))
        for key in reader.video_keys:
            try:
                if check_videos:
                    reader.read_video(rec.episode_index, key)
                else:
                    path = video_file(root, key, rec.episode_index)
                    if not path.is_file():
                        raise DatasetCorruptError(f"{path} is missing", episode_index=rec.episode_index, path=path)
            except DatasetCorruptError as exc:
                report.problems.append(Problem(exc.message, rec.episode_index, str(exc.path)))
    keys = [k for k, v in user_features(reader.info["features"]).items() if v["dtype"] == "video"]
    for path in uncommitted_files(root, len(reader.records), keys):
        report.problems.append(Problem(f"{path} belongs to no committed episode (left by a crash; the next "
                                       "open_for_append removes it)", path=str(path), severity="warning"))
    lines = (root / EPISODES_PATH).read_bytes().count(b"\n") if (root / EPISODES_PATH).is_file() else 0
    if lines != len(reader.records) or reader.info.get("total_episodes") != len(reader.records):
        report.problems.append(Problem(
            f"LeRobot meta files list {lines} episodes (info.json: {reader.info.get('total_episodes')}), the "
            f"sidecar {len(reader.records)} (a writer is open or crashed; the next open_for_append rebuilds them)",
            path=str(root / "meta"), severity="warning"))
    return report
