"""The autoresearch loop: propose, run as a job, score, learn, crown, publish — until the budget is spent.

Each round the loop asks the controller for as many configurations as it has free workers
(``ask(n=q)``), starts each through a :class:`~flywheel.autoresearch.trials.TrialRunner` (a training job
by default), polls them, cancels one that overruns its timeout (recorded ``timeout``), and tells the
controller how each ended (a failed trial is recorded with its status; the loop goes on). After every
trial: the record is in the append-only JSONL (the controller fsyncs it before ``tell`` returns), the
human-readable log has a line, the database mirror is updated, a champion is crowned only after a
re-evaluation (model copied to ``models/champion/model.zip`` with ``manifest.json``, the project's
``champion`` alias moved to its iteration), a summary line is printed, the plots are redrawn, and every
``push_every`` trials the folder is committed and pushed.

Crash safety: the JSONL is the truth. A controller killed with ``kill -9`` is started again on the same
results folder: trials already recorded are never re-run; a trial whose job was still running (or finished
meanwhile) is adopted and recorded once; a trial that ran in process is abandoned and proposed afresh.
A lock file keeps two controllers off one folder.

Example:
    >>> import tempfile
    >>> from flywheel.autoresearch.space import SearchSpace
    >>> from flywheel.autoresearch.trials import FunctionTrials
    >>> space = SearchSpace(params={"x": {"type": "float", "low": 0.0, "high": 1.0}})
    >>> loop = AutoresearchLoop(space=space, runner=FunctionTrials(lambda p: -(p["x"] - 0.3) ** 2),
    ...                         results_dir=Path(tempfile.mkdtemp()), settings=LoopSettings(trials=4, cooldown_s=0),
    ...                         out=lambda line: None)
    >>> loop.run()
    'budget: 4 trials done'
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from flywheel.autoresearch.champion import ChampionKeeper
from flywheel.autoresearch.controller import Controller, Outcome, Trial
from flywheel.autoresearch.history import ResultsFile, TrialLog, TrialRecord
from flywheel.autoresearch.plots import write_report
from flywheel.autoresearch.publish import GitPublisher
from flywheel.autoresearch.space import SearchSpace
from flywheel.autoresearch.store import RunMirror
from flywheel.autoresearch.trials import Running, TrialResult, TrialRunner
from flywheel.errors import Conflict

RESULTS = "results.jsonl"
LOG = "results.log"
PRIOR_DB = "prior_db.jsonl"
PLOTS = "plots"


class LoopSettings(BaseModel):
    """How the loop runs (every field is a CLI option of ``flywheel autoresearch``)."""

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(100, ge=1, le=100_000, description="Trial budget of the search (earlier runs count).")
    workers: int = Field(1, ge=1, le=64, description="Trials in flight at once (ask(n=workers)).")
    timeout_s: float = Field(360.0, gt=0, description="A trial running longer is cancelled and recorded timeout.")
    cooldown_s: float = Field(2.0, ge=0, description="Pause after a trial ends before the next one starts.")
    explore: float = Field(1.0, ge=0, description="κ of UCB = μ + κ·σ.")
    n_startup: int = Field(2, ge=1, description="Random trials before the GP proposes.")
    seed: int = Field(0, ge=0, description="Seeds the controller.")
    patience: int | None = Field(None, ge=1, description="Stop after this many trials without improvement.")
    min_sigma: float | None = Field(None, gt=0, description="Stop when the largest σ falls below this.")
    push_every: int = Field(0, ge=0, description="Commit and push the results every N trials (0: never).")
    plot_every: int = Field(1, ge=1, description="Redraw the plots every N trials.")
    poll_s: float = Field(0.2, gt=0, description="How often running trials are polled.")
    n_candidates: int = Field(1024, ge=16, description="Random candidates scored per proposal.")


class AutoresearchLoop:
    """One search over ``space`` whose trials ``runner`` runs, kept in ``results_dir``.

    Args:
        space: what to search.
        runner: how a trial runs (training job, sleep job, in-process function).
        results_dir: the results folder (``results.jsonl``, ``results.log``, ``plots/``, ``models/champion``).
        settings: budget, workers, timeout, cooldown, publishing.
        prior: base sweeps and earlier autoresearch JSONL files to learn from.
        mirror: the database mirror (None: files only).
        remote: git remote for publishing (default the folder repository's ``origin``).
        name: names the search's scheduler (stable across restarts, so running jobs are adopted).
        out: where the per-trial lines go (the CLI prints them).
    """

    def __init__(self, *, space: SearchSpace, runner: TrialRunner, results_dir: Path,
                 settings: LoopSettings | None = None, prior: Sequence[Path] = (), mirror: RunMirror | None = None,
                 remote: str | None = None, name: str = "autoresearch",
                 out: Callable[[str], None] = print) -> None:
        self.space = space
        self.runner = runner
        self.folder = Path(results_dir)
        self.settings = settings or LoopSettings()
        self.prior = [Path(p) for p in prior]
        self.mirror = mirror
        self.publisher = GitPublisher(self.folder, remote=remote)
        self.name = name
        self.out = out
        self.ctl: Controller | None = None
        self.keeper = ChampionKeeper(root=self.folder, reevaluate=self._reevaluate)
        self.last_published = 0

    # ---- helpers -------------------------------------------------------------------------------------
    def _reevaluate(self, record: TrialRecord) -> float:
        value = self.runner.reevaluate(record)
        if value is None:
            return float(record.mean_reward or 0.0)
        self.out(f"  re-evaluated trial {record.trial}: {value:.4g} (trial mean {record.mean_reward:.4g})")
        return value

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"another autoresearch is running on {self.folder}",
                               hint="Stop it first, or pick another --results folder.") from None
            yield
        finally:
            os.close(fd)  # releases the lock (so does the kernel if this process is killed)

    def _after(self, record: TrialRecord, running: Running) -> None:
        """Everything that follows one recorded trial: mirror, alias, summary line, plots, publishing."""
        if self.mirror is not None:
            self.mirror.finished(record, job_id=running.job_id, iteration_id=running.iteration_id)
            if record.champion and running.iteration_id:
                self.mirror.set_champion(running.iteration_id)
        done = self.ctl.n_completed if self.ctl is not None else record.trial
        if record.ok:
            spread = f" ± {record.std_reward:.3g}" if record.std_reward is not None else ""
            what = f"reward {record.mean_reward:.4g}{spread}"
        else:
            what = f"{record.run_status}: {record.reason}"
        self.out(f"trial {record.trial} ({done}/{self.settings.trials}) {what} in {record.elapsed_sec:.1f} s "
                 f"{record.params}{'  ★ crowned' if record.champion else ''}")
        self.out(f"  {self.keeper.summary()}")
        if self.ctl is not None and done % self.settings.plot_every == 0:
            write_report(self.ctl, self.folder / PLOTS)
        if self.settings.push_every and done - self.last_published >= self.settings.push_every:
            self._publish(f"autoresearch: {done} trials; {self.keeper.summary()}")
            self.last_published = done

    def _publish(self, message: str) -> None:
        self.out(f"  {self.publisher.publish(message)}")

    def _record(self, trial: Trial, result: TrialResult, running: Running) -> TrialRecord:
        assert self.ctl is not None
        elapsed = time.monotonic() - running.started
        if result.status == "ok" and result.mean_reward is not None:
            record = self.ctl.tell(trial, Outcome(result.mean_reward, result.std_reward, result.model_path),
                                   elapsed_sec=elapsed)
        else:
            status = result.status if result.status != "ok" else "failed"
            record = self.ctl.tell_failed(trial, result.reason or status, status=status, elapsed_sec=elapsed)
        self._after(record, running)
        return record

    # ---- resume --------------------------------------------------------------------------------------
    def _resume(self) -> None:
        """Adopt (or abandon) the trials a killed controller left running; record each adopted one once."""
        if self.mirror is None:
            return
        results = ResultsFile(self.folder / RESULTS)
        recorded = {r.trial: r for r in results.load()}
        orphans: list[Running] = []
        for row in self.mirror.unfinished():
            if row.number in recorded:  # killed between the JSONL and the database: copy the record
                self.mirror.finished(recorded[row.number], job_id=row.job_id, iteration_id=row.iteration_id)
                continue
            trial = Trial(number=row.number, params=row.params, x=self.space.encode(row.params))
            running = None
            if row.job_id and self.runner.durable:
                running = self.runner.adopt(trial, job_id=row.job_id, iteration_id=row.iteration_id, age_s=row.age_s)
            if running is None:
                self.mirror.abandon(row.number, "the controller stopped while it ran; proposed afresh")
                continue
            self.out(f"resuming: adopting trial {row.number} (job {row.job_id}) left running by a stopped controller")
            orphans.append(running)
        log = TrialLog(self.folder / LOG)
        while orphans:
            for running in list(orphans):
                result = self.runner.poll(running)
                if result is None and time.monotonic() - running.started > self.settings.timeout_s:
                    self.runner.cancel(running, "timeout")
                    result = TrialResult("timeout", reason=f"over the {self.settings.timeout_s:g} s trial timeout")
                if result is None:
                    continue
                orphans.remove(running)
                record = TrialRecord(trial=running.trial.number, params=running.trial.params,
                                     mean_reward=result.mean_reward if result.status == "ok" else None,
                                     std_reward=result.std_reward, model_path=result.model_path,
                                     elapsed_sec=time.monotonic() - running.started,
                                     run_status=result.status, reason=result.reason or None)
                record.champion = self.keeper.consider(record)
                if record.champion and self.keeper.champion is not None:
                    record.champion_reward = self.keeper.champion.reward
                results.append(record)
                log.write(f"trial {record.trial} adopted after a restart: {record.run_status} "
                          f"{record.mean_reward}; {self.keeper.summary()}")
                self._after(record, running)
            if orphans:
                time.sleep(self.settings.poll_s)

    # ---- the loop ------------------------------------------------------------------------------------
    def run(self) -> str:
        """Run the search to its end (budget, convergence); returns the stop reason."""
        s = self.settings
        with self._locked():
            self.runner.open(name=self.name, workers=s.workers)
            try:
                self._resume()
                self.ctl = Controller(space=self.space, explore=s.explore, n_startup=s.n_startup, seed=s.seed,
                                      results=self.folder / RESULTS, log_path=self.folder / LOG,
                                      prior=self.prior, champion=self.keeper, patience=s.patience,
                                      min_sigma=s.min_sigma, n_candidates=s.n_candidates)
                self.last_published = self.ctl.n_completed
                if self.ctl.n_completed:
                    self.out(f"resumed: {self.ctl.n_completed} trials already done; {self.keeper.summary()}")
                reason = self._loop()
            finally:
                self.runner.close()
            write_report(self.ctl, self.folder / PLOTS)
            if s.push_every and self.ctl.n_completed > self.last_published:
                self._publish(f"autoresearch: {self.ctl.n_completed} trials, stopped ({reason})")
            if self.mirror is not None:
                self.mirror.stopped(reason)
            self.out(f"stopped: {reason}; {self.keeper.summary()}")
            return reason

    def _loop(self) -> str:
        ctl, s = self.ctl, self.settings
        assert ctl is not None
        inflight: dict[int, Running] = {}
        next_start = 0.0
        try:
            while True:
                reason = ctl.stop_reason(s.trials)
                room = s.trials - ctl.n_completed - len(inflight)
                if reason is None and room > 0 and len(inflight) < s.workers and time.monotonic() >= next_start:
                    n = min(s.workers - len(inflight), room)
                    asked = ctl.ask(n)
                    for trial in asked if isinstance(asked, list) else [asked]:
                        running = self.runner.start(trial)
                        inflight[trial.number] = running
                        if self.mirror is not None:
                            self.mirror.started(trial.number, trial.params, job_id=running.job_id,
                                                iteration_id=running.iteration_id)
                if not inflight:
                    if reason is not None:
                        return reason
                    if room <= 0:
                        return ctl.stop_reason(s.trials) or f"budget: {ctl.n_completed} trials done"
                    time.sleep(max(0.0, min(next_start - time.monotonic(), s.poll_s)))
                    continue
                finished = False
                for number, running in list(inflight.items()):
                    result = self.runner.poll(running)
                    if result is None and time.monotonic() - running.started > s.timeout_s:
                        self.runner.cancel(running, "timeout")
                        result = TrialResult("timeout", reason=f"killed at the {s.timeout_s:g} s trial timeout")
                    if result is None:
                        continue
                    del inflight[number]
                    self._record(running.trial, result, running)
                    finished = True
                if finished:
                    next_start = time.monotonic() + s.cooldown_s
                elif inflight:
                    time.sleep(s.poll_s)
        except BaseException:
            for running in inflight.values():  # Ctrl+C or a bug: stop what runs, propose it again next time
                self.runner.cancel(running, "cancelled by user")
                ctl.cancel(running.trial)
                if self.mirror is not None:
                    self.mirror.abandon(running.trial.number, "the controller was interrupted")
            raise
