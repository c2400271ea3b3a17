"""Recording throughput: Flywheel's writer against raw pyarrow.parquet writing of the same frames.

Frames: 64-d float32 state and 8-d float32 action, 200-frame episodes. The anchor builds one arrow table
per episode from ready-made arrays and writes it with ``pyarrow.parquet.write_table`` (no fsync, no
metadata). Flywheel adds frames one at a time with ``add_frame`` (validated, copied) and saves each
episode crash-safe: its arrow table appended (Arrow IPC, with a CRC) with its record to the pending log
before ``save_episode`` returns (a kill -9 loses nothing from then on), then, on the committer thread
and in batches, the parquet file encoded, written and fsynced, the sidecar commit and LeRobot's meta files.
Flywheel's time includes ``close()``, which waits until every episode is committed. The two sides
alternate for several rounds, in the same order within each (``os.sync()`` between them, untimed, so
neither pays for the other's write-back), and the figure is the median of the rounds' ratios: on shared
cores the machine's speed drifts by tens of percent between seconds, and a ratio of two neighbouring
measurements cancels most of that drift (single rounds still range about ±15%). Flywheel's rounds
append to one growing dataset (one chunk per round), so the script also checks that saving does not
slow down as the dataset grows: episodes 1-50 against the last 50.

Run: ``.venv/bin/python benchmarks/dataset_record.py [--episodes 1000]``. Prints the ratio last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.writer import create_dataset, open_for_append

FRAMES = 200
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [64], "names": None},
    "action": {"dtype": "float32", "shape": [8], "names": None},
}


def make_episodes(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((FRAMES, 64), dtype=np.float32), rng.standard_normal((FRAMES, 8), dtype=np.float32))
            for _ in range(n)]


def raw_pyarrow(episodes: list[tuple[np.ndarray, np.ndarray]], out: Path) -> float:
    out.mkdir()
    t0 = time.perf_counter()
    for i, (state, action) in enumerate(episodes):
        table = pa.table({
            "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(state.ravel()), 64),
            "action": pa.FixedSizeListArray.from_arrays(pa.array(action.ravel()), 8),
        })
        pq.write_table(table, out / f"episode_{i:06d}.parquet")
    return time.perf_counter() - t0


def flywheel(episodes: list[tuple[np.ndarray, np.ndarray]], out: Path, per_episode: list[float]) -> float:
    t0 = time.perf_counter()
    if (out / "meta").is_dir():
        writer = open_for_append(out)
    else:
        writer = create_dataset(out, features=FEATURES, fps=50, robot_type="bench")
    with writer:
        for state, action in episodes:
            t = time.perf_counter()
            for i in range(FRAMES):
                writer.add_frame({"observation.state": state[i], "action": action[i]}, task="bench")
            writer.save_episode(success=True)
            per_episode.append(time.perf_counter() - t)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000, help="episodes written by each side")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds; the median ratio is printed")
    args = parser.parse_args()
    n = args.episodes // args.rounds
    episodes = make_episodes(n)
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-record-"))
    anchors, ours, per_episode = [], [], []
    try:
        raw_pyarrow(episodes[:20], tmp / "warm")
        for r in range(args.rounds):
            anchors.append(raw_pyarrow(episodes, tmp / f"raw-{r}"))
            os.sync()  # neither side pays for the other's write-back
            ours.append(flywheel(episodes, tmp / "flywheel", per_episode))
            os.sync()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    anchor, mine = float(np.median(anchors)), float(np.median(ours))
    ratios = np.array(anchors) / np.array(ours)
    k = 50
    first = float(np.median(per_episode[:k])) * 1000
    last = float(np.median(per_episode[-k:])) * 1000
    print(f"raw pyarrow      : {n * FRAMES / anchor:10.0f} frames/s (median of {args.rounds} rounds of {n} episodes)")
    print(f"flywheel writer  : {n * FRAMES / mine:10.0f} frames/s (add_frame + crash-safe save_episode)")
    print(f"episode save time, median of episodes 1-{k}: {first:.2f} ms; of episodes "
          f"{len(per_episode) - k + 1}-{len(per_episode)}: {last:.2f} ms (last/first {last / first:.2f}x)")
    print(f"per-round ratios: {' '.join(f'{r:.2f}' for r in ratios)}")
    print(f"recording throughput vs raw pyarrow: {float(np.median(ratios)):.2f}x "
          f"(median of {args.rounds} paired rounds)")


if __name__ == "__main__":
    main()
