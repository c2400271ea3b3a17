"""Querying 10,000 episodes' metadata: budget 50 ms.

The sidecar log of a 10,000-episode dataset (5 append chunks, 3 tasks, trims, soft deletes and success
labels as edit events) is written with Flywheel's own record functions; the episode files themselves
play no part in a metadata query, so none are written. Timed:

- cold: replay the log from disk (``load_records``) and run one query, as a program that holds only the
  folder does. Before each round the previous round's records are collected, untimed: a program opening
  the folder has no 10,000 records of an earlier open to collect (without that, a full collection of
  them landed in some rounds: 46-54 ms). ``flywheel dataset query`` and the API query the indexed
  catalog instead: its figure against the 50 ms budget is ``benchmarks/dataset_catalog_query.py``'s;
- warm: ``query_episodes`` over loaded records (time range + success + task + chunk, deleted hidden);
- anchor: the same filter with a pandas boolean mask over a DataFrame of the records, measured in
  the same run (the tool a data scientist reaches for).

Run: ``.venv/bin/python benchmarks/dataset_query.py``. Prints the ratio last.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel.datasets.format import SIDECAR_PATH
from flywheel.datasets.query import query_episodes
from flywheel.datasets.records import EpisodeRecord, add_event, encode_events, load_records, schema_header

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BUDGET_MS = 50.0


def write_log(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    events: list = [schema_header({}, 50, "bench")]
    for i in range(n):
        rec = EpisodeRecord(
            episode_index=i, episode_id=f"{i:032x}", chunk_id=i * 5 // n, created_at=T0 + timedelta(seconds=30 * i),
            total_frames=200, start_frame=0, end_frame=200, task=["pick", "place", "push"][i % 3],
            success=[True, False, None][int(rng.integers(3))], source="record", metadata={"operator": f"op{i % 7}"})
        events.append(add_event(rec))
    for i in rng.choice(n, n // 10, replace=False):
        events.append({"op": "trim", "episode_index": int(i), "start_frame": 10, "end_frame": 150, "at": "x"})
    for i in rng.choice(n, n // 20, replace=False):
        events.append({"op": "delete", "episode_index": int(i), "at": "x"})
    (root / "meta").mkdir(parents=True)
    (root / SIDECAR_PATH).write_bytes(encode_events(events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-query-"))
    after, before = T0 + timedelta(days=0.5), T0 + timedelta(days=2.5)
    criteria = {"created_after": after, "created_before": before, "success": True, "task": "pick", "chunk_id": [1, 2]}
    try:
        root = tmp / "ds"
        write_log(root, args.episodes)
        cold, warm, anchor = [], [], []
        records: list = []
        for _ in range(args.repeat):
            records = []
            gc.collect()  # untimed: a cold open starts without the previous round's 10,000 records as garbage
            t = time.perf_counter()
            records = load_records(root)
            hits = query_episodes(records, **criteria)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            hits = query_episodes(records, **criteria)
            warm.append(time.perf_counter() - t)
        df = pd.DataFrame([r.to_dict() for r in records])
        df["created_at"] = pd.to_datetime(df["created_at"])
        for _ in range(args.repeat):
            t = time.perf_counter()
            mask = ((~df.soft_deleted) & (df.created_at >= after) & (df.created_at < before)
                    & (df.success == True) & (df.task == "pick") & df.chunk_id.isin([1, 2]))  # noqa: E712
            expected = df.episode_index[mask].tolist()
            anchor.append(time.perf_counter() - t)
        assert [r.episode_index for r in hits] == expected
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cold_ms, warm_ms, anchor_ms = (float(np.median(x)) * 1000 for x in (cold, warm, anchor))
    print(f"{args.episodes} episodes, {len(hits)} matches")
    print(f"cold (replay sidecar log from disk + query): {cold_ms:7.2f} ms  (budget {BUDGET_MS:.0f} ms)")
    print(f"warm (query_episodes over loaded records)  : {warm_ms:7.2f} ms  (budget {BUDGET_MS:.0f} ms)")
    print(f"pandas boolean mask over the same records  : {anchor_ms:7.2f} ms")
    print(f"cold query time as a fraction of the 50 ms budget: {cold_ms / BUDGET_MS:.2f}x")
    print(f"warm query speed vs pandas: {anchor_ms / warm_ms:.2f}x")


if __name__ == "__main__":
    main()
