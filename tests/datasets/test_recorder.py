"""Recorder: fixed-rate sampling, skew measured, flagged above 5 ms, bad frames drop the episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.datasets.reader import DatasetReader
from flywheel.datasets.recorder import Recorder
from flywheel.datasets.writer import create_dataset
from flywheel.errors import InvalidInput

FEATURES = {"action": {"dtype": "float32", "shape": [1], "names": None}}


class FakeClock:
    """A clock that advances only when slept on or when the source takes time."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += max(s, 0.0001)


def test_samples_at_the_dataset_rate_without_skew(tmp_path: Path) -> None:
    clock = FakeClock()
    times: list[float] = []

    def source() -> dict:
        times.append(clock.t)
        return {"action": np.array([len(times)], np.float32)}

    with create_dataset(tmp_path / "ds", features=FEATURES, robot_type="arm") as w:  # default 50 Hz
        rec = Recorder(w, source, clock=clock, sleep=clock.sleep).record_episode(task="t", num_frames=10)
    intervals = np.diff(times)
    assert np.all(intervals >= 0.02 - 1e-9) and np.all(intervals < 0.0201)
    assert rec.total_frames == 10 and not rec.skew_flagged and rec.max_skew_ms < 0.2
    assert DatasetReader(tmp_path / "ds").records[0].source == "recorder"


def test_a_slow_sample_flags_the_episode(tmp_path: Path) -> None:
    clock = FakeClock()
    n = 0

    def source() -> dict:
        nonlocal n
        n += 1
        if n == 4:
            clock.t += 0.027  # one sample takes 27 ms: the next one is 7 ms late
        return {"action": np.zeros(1, np.float32)}

    with create_dataset(tmp_path / "ds", features=FEATURES, fps=50, robot_type="arm") as w:
        recorder = Recorder(w, source, clock=clock, sleep=clock.sleep)
        rec = recorder.record_episode(task="t", num_frames=8)
    assert rec.skew_flagged and 6.9 < rec.max_skew_ms < 7.2
    assert recorder.last_skew is not None and recorder.last_skew.flagged
    assert DatasetReader(tmp_path / "ds").records[0].skew_flagged


def test_real_clock_duration(tmp_path: Path) -> None:
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=100, robot_type="arm") as w:
        rec = Recorder(w, lambda: {"action": 1.0}).record_episode(task="t", duration_s=0.1)
    assert rec.total_frames == 10


def test_bad_frame_from_the_source_writes_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    values = iter([0.0, 1.0, float("nan")])
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=50, robot_type="arm") as w:
        with pytest.raises(InvalidInput, match="action"):
            Recorder(w, lambda: {"action": next(values)}, clock=clock, sleep=clock.sleep).record_episode(
                task="t", num_frames=5)
        assert w.buffered_frames == 0
    assert DatasetReader(tmp_path / "ds").records == []


def test_needs_a_stop_condition(tmp_path: Path) -> None:
    with create_dataset(tmp_path / "ds", features=FEATURES, fps=50, robot_type="arm") as w, \
            pytest.raises(InvalidInput):
        Recorder(w, lambda: {"action": 1.0}).record_episode(task="t")
