"""Job logs: one append-only file per job under the home, followed live, kept as an asset at the end.

The runner appends the worker's stdout and stderr to `home/jobs/<job id>/job.log`; readers follow it by
byte offset (`follow`) until the job is over, which is what the SSE route and `flywheel job logs
--follow` do. When a job ends (completed, failed, cancelled, dead) the whole file is stored in the blob
store as an asset of the job's experiment (and iteration), tagged `log`.

Example:
    >>> log_path("job_0123456789ab").name
    'job.log'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from flywheel.jobs.models import Job
from flywheel.platform.models import Experiment, Iteration, User
from flywheel.settings import get_settings

CHUNK = 64 * 1024


def log_path(job_id: str) -> Path:
    """Where a job's log lives."""
    return get_settings().home.absolute() / "jobs" / job_id / "job.log"


def read_from(path: Path, offset: int) -> tuple[bytes, int]:
    """The bytes of `path` from `offset` (at most one chunk), and the next offset."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(CHUNK)
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


def follow(path: Path, is_over: Callable[[], bool], *, offset: int = 0, poll_s: float = 0.2,
           timeout_s: float | None = None) -> Iterator[bytes]:
    """Yield the log's bytes as they are written, until the job is over and everything is read.

    Args:
        path: the log file.
        is_over: True once the job is in a final state (checked between reads).
        offset: where to start.
        poll_s: the pause when there is nothing new.
        timeout_s: give up after this long (None: follow until the job ends).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        data, offset = read_from(path, offset)
        if data:
            yield data
            continue
        if is_over():
            data, offset = read_from(path, offset)  # what was written between the read and the check
            while data:
                yield data
                data, offset = read_from(path, offset)
            return
        if deadline is not None and time.monotonic() > deadline:
            return
        time.sleep(poll_s)


def persist_log(session: Session, job: Job) -> str | None:
    """Store the job's log in the blob store as an asset (tag `log`); return its id (None: no log file)."""
    from flywheel.platform.assets import upload_asset
    from flywheel.platform.schemas import AssetCreate

    path = Path(job.log_path) if job.log_path else log_path(job.id)
    user = session.get(User, job.owner_id)
    if not path.is_file() or user is None or session.get(Experiment, job.experiment_id) is None:
        return None
    iteration_id = job.iteration_id if job.iteration_id and session.get(Iteration, job.iteration_id) else None
    asset = upload_asset(
        session, user,
        AssetCreate(experiment_id=job.experiment_id, iteration_id=iteration_id, name=f"job-{job.id}.log",
                    tags=["log"]),
        path,
    )
    return asset.id
