"""Trial records on disk: an append-only JSONL results file, prior results, and a human-readable log.

One JSON object per line, one line per finished trial, appended and fsynced before ``tell`` returns. A
crash can only cut the last line; the loader skips a line that is not valid JSON (and counts it), and the
next append first ends that fragment with a newline, so the file is never rewritten.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.jsonl"
    >>> f = ResultsFile(path)
    >>> _ = f.append(TrialRecord(trial=1, params={"lr": 0.01}, mean_reward=5.0))
    >>> _ = path.open("a").write('{"trial": 2, "par')  # a crash mid-write
    >>> [r.trial for r in f.load()], f.torn_lines
    ([1], 1)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flywheel.autoresearch.space import SearchSpace
from flywheel.durable import fsync_dir
from flywheel.errors import InvalidInput

#: ``run_status`` values. Only ``ok`` records carry a reward the GP learns from.
STATUSES = ("ok", "failed", "timeout")
REWARD_KEYS = ("mean_reward", "reward", "value")


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class TrialRecord(BaseModel):
    """One finished trial, as written to the results JSONL.

    Example:
        >>> TrialRecord(trial=3, params={"n_steer": 7}, mean_reward=1.5).run_status
        'ok'
    """

    model_config = ConfigDict(extra="allow")

    trial: int = Field(ge=0, description="Trial number within the search (1-based).")
    timestamp: str = Field(default_factory=now_iso, description="When the trial finished (UTC, ISO 8601).")
    params: dict[str, Any] = Field(description="The configuration that was run.")
    mean_reward: float | None = Field(None, description="Mean evaluation reward; None unless run_status is ok.")
    std_reward: float | None = Field(None, description="Standard deviation of the evaluation rewards.")
    model_path: str | None = Field(None, description="Where the trained model was saved.")
    champion: bool = Field(False, description="Whether this trial was crowned champion when it finished.")
    elapsed_sec: float = Field(0.0, ge=0.0, description="Wall time from ask to tell.")
    run_status: str = Field("ok", description="ok, failed or timeout (or another failure word).")
    reason: str | None = Field(None, description="Why a trial failed.")
    champion_reward: float | None = Field(None, description="The re-evaluated reward it was crowned with.")

    @property
    def ok(self) -> bool:
        """Whether the trial produced a finite reward."""
        return self.run_status == "ok" and self.mean_reward is not None and math.isfinite(self.mean_reward)


class ResultsFile:
    """The append-only JSONL of one search.

    Args:
        path: the file (created with its folder on first append).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.torn_lines = 0

    def load(self) -> list[TrialRecord]:
        """Every record in file order; lines that are not JSON objects (a torn write) are skipped and counted.

        Raises:
            InvalidInput: a line is JSON but not a trial record (names the line).
        """
        self.torn_lines = 0
        if not self.path.exists():
            return []
        out = []
        for i, line in enumerate(self.path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.torn_lines += 1
                continue
            try:
                out.append(TrialRecord.model_validate(data))
            except ValidationError as exc:
                raise InvalidInput(f"line {i} is not a trial record: {exc.errors()[0]['msg']}",
                                   field=str(self.path)) from None
        return out

    def append(self, record: TrialRecord) -> TrialRecord:
        """Append one record and fsync it; ends a torn last line first so it stays on a line of its own."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        line = record.model_dump_json() + "\n"
        with self.path.open("ab") as fh:
            if not new and fh.tell() > 0:
                with self.path.open("rb") as rh:
                    rh.seek(-1, os.SEEK_END)
                    if rh.read(1) != b"\n":
                        line = "\n" + line
            fh.write(line.encode())
            fh.flush()
            os.fsync(fh.fileno())
        if new:
            fsync_dir(self.path.parent)
        return record


def _params_of(data: dict[str, Any], space: SearchSpace) -> dict[str, Any] | None:
    if isinstance(data.get("params"), dict):
        src = data["params"]
    elif isinstance(data.get("config"), dict):
        src = data["config"]
    else:
        src = data
    if not all(n in src for n in space.names):
        return None
    return {n: src[n] for n in space.names}


def load_prior(paths: Iterable[str | Path], space: SearchSpace) -> tuple[list[tuple[dict[str, Any], float]], int]:
    """Observations ``(params, reward)`` from earlier results (a base sweep or earlier searches).

    A line may be a ``TrialRecord`` or a flat object holding the space's names and a reward under
    ``mean_reward``, ``reward`` or ``value`` (parameters may also sit under ``params`` or ``config``). Lines
    that are torn, failed, or outside the space are skipped and counted.

    Returns:
        the observations and the number of lines skipped.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "sweep.jsonl"
        >>> _ = p.write_text('{"lr": 0.01, "reward": 3.0}\\n{"lr": 5.0, "reward": 1.0}\\n')
        >>> space = SearchSpace(params={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}})
        >>> load_prior([p], space)
        ([({'lr': 0.01}, 3.0)], 1)
    """
    obs: list[tuple[dict[str, Any], float]] = []
    skipped = 0
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InvalidInput("prior results file does not exist", field=str(path))
        for line in path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                skipped += 1
                continue
            if not isinstance(data, dict) or data.get("run_status", "ok") != "ok":
                skipped += 1
                continue
            params = _params_of(data, space)
            reward = next((data[k] for k in REWARD_KEYS if isinstance(data.get(k), int | float)), None)
            if params is None or reward is None or not math.isfinite(reward):
                skipped += 1
                continue
            try:
                space.validate(params)
            except InvalidInput:
                skipped += 1
                continue
            obs.append((params, float(reward)))
    return obs, skipped


class TrialLog:
    """The human-readable log next to the results: one or a few lines per event, appended and flushed.

    Example:
        >>> import tempfile, pathlib
        >>> log = TrialLog(pathlib.Path(tempfile.mkdtemp()) / "results.log")
        >>> log.write("search started")
        >>> log.path.read_text().endswith("search started\\n")
        True
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, text: str) -> None:
        """Append ``text`` (one or more lines) with a timestamp on the first line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(f"[{now_iso()}] {text}\n")
            fh.flush()
            os.fsync(fh.fileno())

    def write_lines(self, header: str, lines: Sequence[str]) -> None:
        """A header line and indented lines (e.g. the top-5 candidates)."""
        self.write(header + "".join(f"\n    {ln}" for ln in lines))
