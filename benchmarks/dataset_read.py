"""Reading for training: random access over 100k frames, Flywheel's FrameDataset against raw pyarrow.

Both sides start from the same folder of 500 episode parquet files (200 frames each, 64-d float32 state,
8-d float32 action) and fetch the same shuffled indexes in batches of 256, the way a training loop does.
The anchor reads the files with ``pyarrow.parquet.read_table``, concatenates them into one chunk and
gathers each batch with ``Table.take`` then ``to_numpy``. Flywheel opens a ``FrameDataset`` (records replayed, trims and
deletions honoured, files checked against their records) and gathers each batch with ``get_batch``
(torch tensors of every feature and default column plus the task strings). Per-item ``__getitem__``
throughput is printed for information.

Run: ``.venv/bin/python benchmarks/dataset_read.py``. Prints the ratio last.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.episode import EpisodeArrays
from flywheel.datasets.format import data_file
from flywheel.datasets.torch_dataset import FrameDataset
from flywheel.datasets.writer import create_dataset

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [64], "names": None},
    "action": {"dtype": "float32", "shape": [8], "names": None},
}
FRAMES = 200
BATCH = 256


def build(root: Path, episodes: int) -> None:
    rng = np.random.default_rng(0)
    with create_dataset(root, features=FEATURES, fps=50, robot_type="bench") as w:
        for _ in range(episodes):
            w.append_episode(EpisodeArrays({
                "observation.state": rng.standard_normal((FRAMES, 64), dtype=np.float32),
                "action": rng.standard_normal((FRAMES, 8), dtype=np.float32)}, task="bench"))


def raw_pyarrow(root: Path, episodes: int, order: np.ndarray) -> float:
    t0 = time.perf_counter()
    table = pa.concat_tables([pq.read_table(data_file(root, i)) for i in range(episodes)]).combine_chunks()
    for start in range(0, len(order), BATCH):
        rows = table.take(order[start:start + BATCH])
        state = rows.column("observation.state").combine_chunks().flatten().to_numpy().reshape(-1, 64)
        action = rows.column("action").combine_chunks().flatten().to_numpy().reshape(-1, 8)
        assert len(state) == len(action)
    return time.perf_counter() - t0


def flywheel(root: Path, order: np.ndarray) -> float:
    t0 = time.perf_counter()
    ds = FrameDataset(root)
    for start in range(0, len(order), BATCH):
        batch = ds.get_batch(order[start:start + BATCH])
        assert len(batch["observation.state"]) == len(batch["action"])
    return time.perf_counter() - t0


def per_item(root: Path, order: np.ndarray) -> float:
    ds = FrameDataset(root)
    t0 = time.perf_counter()
    for i in order:
        ds[int(i)]
    return len(order) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-read-"))
    try:
        root = tmp / "ds"
        build(root, args.episodes)
        frames = args.episodes * FRAMES
        order = np.random.default_rng(1).permutation(frames)
        raw_pyarrow(root, args.episodes, order[:BATCH])  # warm the page cache and imports
        flywheel(root, order[:BATCH])
        anchors, ours = [], []
        for _ in range(args.rounds):
            anchors.append(raw_pyarrow(root, args.episodes, order))
            ours.append(flywheel(root, order))
        items = per_item(root, order[:20_000])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    anchor, mine = float(np.median(anchors)), float(np.median(ours))
    print(f"raw pyarrow (read_table + take)    : {frames / anchor:10.0f} frames/s over {frames} frames")
    print(f"flywheel FrameDataset (get_batch)  : {frames / mine:10.0f} frames/s")
    print(f"flywheel FrameDataset[i] per item  : {items:10.0f} frames/s")
    print(f"random-access read throughput vs raw pyarrow: {anchor / mine:.2f}x")


if __name__ == "__main__":
    main()
