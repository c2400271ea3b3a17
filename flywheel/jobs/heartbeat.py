"""Heartbeats: a running job tells the database every N seconds that it lives, how far it got, what it costs.

A :class:`Heartbeat` is a thread inside the worker. The template's `report(step, metrics)` only updates
memory; the thread writes, every `FLYWHEEL_JOB_HEARTBEAT_S` seconds: the time, elapsed seconds, step,
epoch (the number of reports so far, or an `epoch` metric when the template reports one), the latest
metrics and the current cost. Each write is fenced by the worker's attempt, so a worker that was declared
dead (or cancelled) learns it at its next beat and stops. The beat also reads stop requests (cancel,
timeout) and checks the owner's spend limit: reaching it asks the job to stop (`spend limit`).

Example:
    >>> beat = Heartbeat("job_0123456789ab", attempt=0, interval_s=60, price_per_hour_usd=0.0)
    >>> beat.report(64, {"charts/ep_rew_mean": 1.5})
    >>> beat.step, beat.epoch
    (64, 1)
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from sqlalchemy import Engine, update

from flywheel.jobs import cost
from flywheel.jobs.lifecycle import note
from flywheel.jobs.models import Job
from flywheel.platform.models import User
from flywheel.store.base import utcnow
from flywheel.store.engine import session_scope


class Heartbeat:
    """The worker's heartbeat thread, and the `report`/`should_stop` hooks a template sees."""

    def __init__(self, job_id: str, *, attempt: int, interval_s: float, price_per_hour_usd: float,
                 engine: Engine | None = None) -> None:
        self.job_id = job_id
        self.engine = engine
        self.attempt = attempt
        self.interval_s = interval_s
        self.price = price_per_hour_usd
        self.started = time.monotonic()
        self.step = 0
        self.epoch = 0
        self.metrics: dict[str, float] = {}
        self.stop_reason = ""
        self.lost = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    # --- the hooks a template sees -------------------------------------------------------------------

    def report(self, step: int, metrics: dict[str, float]) -> None:
        """Remember the latest step and metrics (written at the next beat)."""
        with self._lock:
            self.step = int(step)
            self.epoch = int(metrics.get("epoch", metrics.get("charts/epoch", self.epoch + 1)))
            self.metrics.update({k: float(v) for k, v in metrics.items() if math.isfinite(float(v))})

    def should_stop(self) -> bool:
        """True once a stop was asked for (SIGTERM, cancel, timeout, spend limit) or the job is not ours."""
        return bool(self.stop_reason) or self.lost

    def stop(self, reason: str) -> None:
        """Ask the run to stop (the first reason wins)."""
        if not self.stop_reason:
            self.stop_reason = reason

    # --- the thread ------------------------------------------------------------------------------------

    def start(self) -> Heartbeat:
        """Beat once now, then every interval."""
        self.beat()
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def elapsed(self) -> float:
        """Seconds since the job started running here."""
        return time.monotonic() - self.started

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                self.beat()
            except Exception as exc:  # a database hiccup must not kill the run; the next beat retries
                print(f"heartbeat failed: {type(exc).__name__}: {exc}", flush=True)

    def beat(self) -> None:
        """Write one heartbeat; pick up stop requests and the spend limit."""
        elapsed = self.elapsed()
        with self._lock:
            values: dict[str, Any] = {"heartbeat_at": utcnow(), "elapsed_s": elapsed, "step": self.step,
                                      "epoch": self.epoch, "metrics": dict(self.metrics),
                                      "current_cost_usd": cost.cost(self.price, seconds=elapsed)}
        with session_scope(self.engine) as session:
            result = session.execute(
                update(Job).where(Job.id == self.job_id, Job.status == "running", Job.attempt == self.attempt)
                .values(**values).execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                self.lost = True
                return
            job = session.get(Job, self.job_id)
            if job is None:
                self.lost = True
                return
            if job.stop_requested:
                self.stop(job.stop_requested)
                return
            user = session.get(User, job.owner_id)
            if user is not None and cost.limit_reached(session, user):
                job.stop_requested = "spend limit"
                note(session, job, f"spend ${cost.live_spend(session, user):.4f} reached the limit "
                     f"${user.spend_limit_usd:.2f}: stopping", reason="spend limit")
                self.stop("spend limit")
