"""Recording a live source at a fixed rate, measuring how late each sample was taken.

Frame ``k`` is due at ``t0 + k / fps``. The recorder sleeps until then, samples the source, and records
the skew (how late the sample was taken). Late frames are not dropped: the schedule stays fixed, so a
slow source shows up as growing skew. An episode whose largest skew exceeds ``SKEW_LIMIT_MS`` (5 ms) is
flagged in its record. The rate is the dataset's fps (50 Hz unless the dataset says otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flywheel.datasets.records import SKEW_LIMIT_MS, EpisodeRecord
from flywheel.datasets.writer import DatasetWriter
from flywheel.errors import InvalidInput

Source = Callable[[], Mapping[str, Any]]


@dataclass
class SkewReport:
    """Sampling skew of one recorded episode, in milliseconds (positive = late)."""

    skews_ms: list[float] = field(default_factory=list)

    @property
    def max_ms(self) -> float:
        """The largest skew."""
        return max(self.skews_ms, default=0.0)

    @property
    def mean_ms(self) -> float:
        """The mean skew."""
        return sum(self.skews_ms) / len(self.skews_ms) if self.skews_ms else 0.0

    @property
    def flagged(self) -> bool:
        """True when the largest skew exceeds the limit."""
        return self.max_ms > SKEW_LIMIT_MS


class Recorder:
    """Samples a source at the dataset's fps and saves episodes through a writer.

    Args:
        writer: an open dataset writer.
        source: called once per frame; returns feature key -> value (as ``add_frame`` takes).
        clock: seconds, monotonic (injectable for tests).
        sleep: sleeps the given seconds (injectable for tests).

    Example:
        >>> rec = Recorder(writer, lambda: {"observation.state": read_joints(), "action": cmd()})  # doctest: +SKIP
        >>> record = rec.record_episode(task="wave", num_frames=100)  # doctest: +SKIP
        >>> record.skew_flagged  # doctest: +SKIP
        False
    """

    def __init__(self, writer: DatasetWriter, source: Source, *, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.writer = writer
        self.source = source
        self.clock = clock
        self.sleep = sleep
        self.period = 1.0 / writer.fps
        self.last_skew: SkewReport | None = None

    def _wait_until(self, due: float) -> float:
        now = self.clock()
        while now < due:
            remaining = due - now
            self.sleep(remaining - 0.0005 if remaining > 0.001 else 0.0)  # sleep, then spin the last 0.5 ms
            now = self.clock()
        return now

    def record_episode(self, *, task: str, num_frames: int | None = None, duration_s: float | None = None,
                       should_stop: Callable[[], bool] | None = None, success: bool | None = None,
                       metadata: dict[str, Any] | None = None) -> EpisodeRecord:
        """Record frames until ``num_frames``, ``duration_s`` or ``should_stop()``, then save the episode.

        Raises:
            InvalidInput: no stop condition, or a bad frame from the source (the episode is dropped,
                nothing is written).

        Example:
            >>> Recorder(writer, source).record_episode(task="wave", duration_s=2.0).total_frames  # doctest: +SKIP
            100
        """
        if num_frames is None and duration_s is None and should_stop is None:
            raise InvalidInput("give num_frames, duration_s or should_stop", field="num_frames")
        if num_frames is not None and (isinstance(num_frames, bool) or not isinstance(num_frames, int)
                                       or num_frames <= 0):
            raise InvalidInput(f"must be a positive integer, got {num_frames!r}", field="num_frames")
        limit = num_frames
        if duration_s is not None:
            if duration_s <= 0:
                raise InvalidInput(f"must be positive, got {duration_s!r}", field="duration_s")
            by_time = max(1, round(duration_s / self.period))
            limit = by_time if limit is None else min(limit, by_time)
        report = SkewReport()
        self.writer.clear_episode()
        t0 = self.clock()
        k = 0
        try:
            while limit is None or k < limit:
                due = t0 + k * self.period
                taken = self._wait_until(due)
                frame = self.source()
                report.skews_ms.append((taken - due) * 1000.0)
                self.writer.add_frame(dict(frame), task=task)
                k += 1
                if should_stop is not None and should_stop():
                    break
        except BaseException:
            self.writer.clear_episode()
            raise
        self.last_skew = report
        return self.writer.save_episode(success=success, source="recorder", metadata={
            **(metadata or {}), "mean_skew_ms": round(report.mean_ms, 3)}, max_skew_ms=report.max_ms)
