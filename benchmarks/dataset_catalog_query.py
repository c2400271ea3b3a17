"""Querying 10,000 episodes' metadata in the database catalog: budget 50 ms.

One dataset of 10,000 episodes (5 append chunks, 3 tasks, success labels, 10% trimmed, 5% soft-deleted)
is mirrored into the ``episodes`` table of a fresh SQLite database (or ``--database-url``) with the
catalog's own ``mirror``; no episode files are needed for a metadata query. Timed, median of ``--repeat``:

- catalog: ``catalog.query_episodes`` (ownership check + time range + success + task + chunk, deleted
  hidden), ORM rows returned, as the CLI and the API run it;
- anchor: the same filter as one raw SQL statement on the same connection (``sqlite3``-level cursor),
  measured in the same run.

Run: ``.venv/bin/python benchmarks/dataset_catalog_query.py``. Prints the ratios last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BUDGET_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-catalog-"))
    os.environ["FLYWHEEL_HOME"] = str(tmp)
    os.environ["FLYWHEEL_DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/flywheel.db"

    from flywheel.datasets import catalog
    from flywheel.datasets.models import Dataset
    from flywheel.datasets.records import EpisodeRecord
    from flywheel.datasets.schemas import EpisodeQuery
    from flywheel.platform.schemas import UserCreate
    from flywheel.platform.users import create_user
    from flywheel.store import new_id
    from flywheel.store.engine import dispose_engines, get_engine
    from flywheel.store.migrate import upgrade

    try:
        engine = get_engine()
        upgrade(engine)
        session = sessionmaker(bind=engine, expire_on_commit=False)()
        user, _ = create_user(session, UserCreate(name=f"bench{os.getpid()}"))
        ds = Dataset(id=new_id("dst"), owner_id=user.id, name="bench", root_path="")
        session.add(ds)
        session.flush()
        rng = np.random.default_rng(0)
        n = args.episodes
        trimmed = set(rng.choice(n, n // 10, replace=False).tolist())
        deleted = set(rng.choice(n, n // 20, replace=False).tolist())
        records = [EpisodeRecord(
            episode_index=i, episode_id=f"{i:032x}", chunk_id=i * 5 // n, created_at=T0 + timedelta(seconds=30 * i),
            total_frames=200, start_frame=10 if i in trimmed else 0, end_frame=150 if i in trimmed else 200,
            task=["pick", "place", "push"][i % 3], success=[True, False, None][int(rng.integers(3))],
            soft_deleted=i in deleted) for i in range(n)]
        t = time.perf_counter()
        catalog.mirror(session, ds, records)
        session.commit()
        mirror_ms = (time.perf_counter() - t) * 1000

        after, before = T0 + timedelta(days=0.5), T0 + timedelta(days=2.5)
        query = EpisodeQuery(created_after=after, created_before=before, success="yes", task=["pick"],
                             chunk_id=[1, 2], limit=100_000)
        times, hits = [], []
        for _ in range(args.repeat):
            session.expunge_all()
            t = time.perf_counter()
            hits = catalog.query_episodes(session, user, ds.id, query)
            times.append(time.perf_counter() - t)
        raw_sql = text(
            "SELECT * FROM episodes WHERE dataset_id = :d AND soft_deleted = :f AND created_at >= :a "
            "AND created_at < :b AND success = :t AND task IN ('pick') AND chunk_id IN (1, 2) "
            "ORDER BY episode_index")
        params = {"d": ds.id, "f": False, "t": True,
                  "a": after if engine.dialect.name != "sqlite" else after.replace(tzinfo=None).isoformat(" "),
                  "b": before if engine.dialect.name != "sqlite" else before.replace(tzinfo=None).isoformat(" ")}
        anchor, expected = [], []
        with engine.connect() as conn:
            for _ in range(args.repeat):
                t = time.perf_counter()
                expected = conn.execute(raw_sql, params).fetchall()
                anchor.append(time.perf_counter() - t)
        got = [e.episode_index for e in hits]
        want = [row.episode_index for row in expected]
        if got != want:
            raise SystemExit(f"catalog and raw SQL disagree: {len(got)} vs {len(want)} episodes")
        session.close()
        catalog_ms = statistics.median(times) * 1000
        anchor_ms = statistics.median(anchor) * 1000
        print(f"backend: {engine.dialect.name}; {n} episodes mirrored in {mirror_ms:.0f} ms; query matches "
              f"{len(got)} episodes")
        print(f"catalog.query_episodes: {catalog_ms:.2f} ms (median of {args.repeat})")
        print(f"raw SQL anchor (same filter, same run): {anchor_ms:.2f} ms")
        print(f"catalog / raw SQL: {catalog_ms / anchor_ms:.2f}x")
        print(f"catalog / 50 ms budget: {catalog_ms / BUDGET_MS:.3f} (under budget: {catalog_ms < BUDGET_MS})")
    finally:
        dispose_engines()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
