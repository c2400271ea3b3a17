"""The controller: ask/tell Bayesian optimisation (GP + UCB) that maximises reward and keeps its history.

``ask()`` proposes a configuration (random for the first ``n_startup`` observations, then the UCB maximiser
of a GP fitted to every observation so far); ``tell()``/``tell_failed()`` record the outcome (appended to the
results JSONL before returning, champion decided first); ``run()`` loops until the budget is spent or the
search has converged. Prior results (a base sweep, earlier searches) are loaded at start-up, and a restart on
the same results file resumes: completed trials count towards the budget and are never re-run.

Example:
    >>> from flywheel.autoresearch.space import SearchSpace
    >>> space = SearchSpace(params={"x": {"type": "float", "low": -2.0, "high": 2.0}})
    >>> ctl = Controller(space=space, explore=1.0, seed=0)
    >>> reason = ctl.run(lambda p: -(p["x"] - 0.3) ** 2, n_trials=12)
    >>> reason, abs(ctl.best.params["x"] - 0.3) < 0.05
    ('budget: 12 trials done', True)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from flywheel.autoresearch.acquisition import Candidate, Proposal, maximise_ucb
from flywheel.autoresearch.champion import ChampionKeeper
from flywheel.autoresearch.gp import GPRegressor, Hyper
from flywheel.autoresearch.history import ResultsFile, TrialLog, TrialRecord, load_prior
from flywheel.autoresearch.space import SearchSpace
from flywheel.errors import InvalidInput

log = logging.getLogger(__name__)


@dataclass
class Trial:
    """A proposed configuration waiting for its result.

    Attributes:
        number: 1-based, unique within the search (continues after a restart).
        params: the configuration to run.
        x: its unit-cube encoding.
        candidates: the top UCB candidates when it was proposed (empty for random start-up trials).
    """

    number: int
    params: dict[str, Any]
    x: np.ndarray
    candidates: list[Candidate] = field(default_factory=list)
    asked_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Outcome:
    """What an objective may return instead of a bare mean reward."""

    mean_reward: float
    std_reward: float | None = None
    model_path: str | None = None


class Controller:
    """GP-UCB search over a ``SearchSpace``, maximising reward.

    Args:
        space: what to search.
        explore: κ in ``UCB = μ + κ·σ`` (larger explores more; σ in standardised reward units). The default
            1.0 is the one setting used for every benchmark problem (2.0 was worse on 6 of 8, measured).
        n_startup: observations (prior results included) before the GP takes over; earlier trials are random.
        seed: seeds everything random; a resumed search reseeds with the number of completed trials.
        results: the results JSONL of this search (loaded if it exists, appended to). None keeps memory only.
        prior: other JSONL files to learn from (a base sweep, earlier searches); never written.
        log_path: the human-readable log (default: ``results`` with suffix ``.log``).
        champion: decides crowning (re-evaluation); default crowns on a better mean reward, in memory.
        patience: stop after this many trials without improving the best reward (None: never).
        min_sigma: stop when the largest posterior σ over the candidates falls below this (reward units).
        batch: how ``ask(n>1)`` and pending trials are filled in: kriging ``believer`` (μ) or constant ``liar``
            (the worst reward seen).
        n_candidates: random (Sobol) candidates scored per proposal.
        allow_repeats: propose a configuration that already ran (useful only with very noisy rewards).
        adaptive_explore: raise κ while the search stalls (see ``kappa``).

    Raises:
        InvalidInput: a bad setting (names it and the allowed range).
    """

    def __init__(self, *, space: SearchSpace, explore: float = 1.0, n_startup: int = 2, seed: int = 0,
                 results: str | Path | None = None, prior: Sequence[str | Path] = (),
                 log_path: str | Path | None = None, champion: ChampionKeeper | None = None,
                 patience: int | None = None, min_sigma: float | None = None,
                 batch: Literal["believer", "liar"] = "believer", n_candidates: int = 1024,
                 allow_repeats: bool = False, adaptive_explore: bool = False) -> None:
        if not (isinstance(explore, int | float) and math.isfinite(explore) and explore >= 0):
            raise InvalidInput(f"must be a finite number >= 0, got {explore!r}", field="explore", allowed=">= 0")
        if n_startup < 1:
            raise InvalidInput(f"must be >= 1, got {n_startup}", field="n_startup", allowed=">= 1")
        if patience is not None and patience < 1:
            raise InvalidInput(f"must be >= 1, got {patience}", field="patience", allowed=">= 1 or None")
        if batch not in ("believer", "liar"):
            raise InvalidInput(f"unknown strategy {batch!r}", field="batch", allowed=["believer", "liar"])
        self.space = space
        self.explore = float(explore)
        self.n_startup = n_startup
        self.seed = seed
        self.patience = patience
        self.min_sigma = min_sigma
        self.batch = batch
        self.n_candidates = n_candidates
        self.allow_repeats = allow_repeats
        self.adaptive_explore = adaptive_explore
        self.champion = champion or ChampionKeeper()
        self.results = ResultsFile(results) if results is not None else None
        default_log = Path(results).with_suffix(".log") if results is not None else None
        self.log = TrialLog(log_path or default_log) if (log_path or default_log) else None
        self.records: list[TrialRecord] = self.results.load() if self.results else []
        for r in self.records:
            try:
                space.validate(r.params)
            except InvalidInput as exc:
                raise InvalidInput(f"trial {r.trial} does not fit the search space ({exc.message}); "
                                   "start a new results file for a new space", field=str(results)) from None
        self.prior, skipped = load_prior(prior, space)
        self.pending: dict[int, Trial] = {}
        self._lock = threading.RLock()  # workers may tell from their own threads
        self.last_proposal: Proposal | None = None
        self._hyper: Hyper | None = None
        self._n_full_fit = 0
        self._seen = {space.key(r.params) for r in self.records}
        self._seen |= {space.key(p) for p, _ in self.prior}
        self._next = max((r.trial for r in self.records), default=0) + 1
        self._rng = np.random.default_rng([seed, len(self.records)])
        self._gp = GPRegressor(seed=int(self._rng.integers(2**31)))
        crowned = [r for r in self.records if r.champion]
        if self.champion.champion is None and crowned:  # no manifest on disk: the results file says who won
            self.champion.adopt(crowned[-1])
        self._note(f"search loaded: {len(self.records)} earlier trials, {len(self.prior)} prior results"
                   f" ({skipped} prior lines skipped), next trial {self._next}")

    # ---- bookkeeping -------------------------------------------------------------------------------
    def _note(self, text: str) -> None:
        log.info(text)
        if self.log is not None:
            self.log.write(text)

    @property
    def n_completed(self) -> int:
        """Finished trials of this search (ok or failed), earlier runs included."""
        return len(self.records)

    @property
    def best(self) -> TrialRecord | None:
        """The finished trial with the highest mean reward (this search only)."""
        ok = [r for r in self.records if r.ok]
        return max(ok, key=lambda r: r.mean_reward) if ok else None

    def observations(self) -> tuple[np.ndarray, np.ndarray]:
        """Every observation the GP learns from: prior results and ok trials, encoded."""
        pairs = [(p, v) for p, v in self.prior] + [(r.params, r.mean_reward) for r in self.records if r.ok]
        if not pairs:
            return np.zeros((0, self.space.dim)), np.zeros(0)
        x = np.array([self.space.encode(p) for p, _ in pairs])
        return x, np.array([v for _, v in pairs], dtype=float)

    def stall(self, y: np.ndarray) -> int:
        """Observations since the best one last rose by more than 0.1% of the rewards' standard deviation."""
        if len(y) < 2:
            return 0
        tol = 1e-4 * float(y.std())
        best, last = -np.inf, 0
        for i, v in enumerate(y):
            if v > best + tol:
                last = i
            best = max(best, v)
        return len(y) - 1 - last

    def kappa(self, y: np.ndarray) -> float:
        """The κ used now: ``explore``, or with ``adaptive_explore`` growing by a third of it per stalled trial
        beyond four.

        A GP that has become confident around a local optimum keeps proposing points next to it (measured:
        Hartmann-6 stuck at regret 1.6 for 20 trials); raising κ while nothing improves sends it elsewhere,
        and the first real improvement brings κ back. Off by default: on 4 seeds it helped Hartmann-6
        (median regret 0.9 → 0.26) but cost Branin (1e-4 → 3e-4) and the six-hump camel (2e-5 → 3e-2).
        """
        if not self.adaptive_explore:
            return self.explore
        return self.explore * (1.0 + max(0, self.stall(y) - 4) / 3.0)

    # ---- ask ---------------------------------------------------------------------------------------
    def _fit(self, x: np.ndarray, y: np.ndarray) -> GPRegressor:
        n = len(x)
        changed = n - self._n_full_fit >= max(3, self._n_full_fit // 4)
        if self._hyper is None or changed:
            self._gp.fit(x, y, warm_start=self._hyper, n_restarts=3 if self._hyper is None else 2)
            self._n_full_fit = n
        else:
            self._gp.fit(x, y, warm_start=self._hyper, n_restarts=1)
        self._hyper = self._gp.hyper
        return self._gp

    def _random_distinct(self, taken: set[tuple[Any, ...]]) -> np.ndarray:
        for _ in range(1000):
            x = self.space.sample(self._rng, 1)[0]
            if self.allow_repeats or self.space.key(self.space.decode(x)) not in taken:
                return x
        return x  # a tiny space where everything has run: repeat

    @overload
    def ask(self) -> Trial: ...

    @overload
    def ask(self, n: Literal[1]) -> Trial: ...

    @overload
    def ask(self, n: int) -> Trial | list[Trial]: ...

    def ask(self, n: int = 1) -> Trial | list[Trial]:
        """Propose ``n`` distinct configurations (one ``Trial`` for ``n=1``, else a list).

        Trials already asked and not yet told (pending) are filled in as fantasies, so parallel workers get
        different points.
        """
        if n < 1:
            raise InvalidInput(f"must be >= 1, got {n}", field="n", allowed=">= 1")
        from flywheel.autoresearch._blas import single_threaded_blas

        with self._lock, single_threaded_blas():
            trials = [self._ask_one_batch_member(i == 0) for i in range(n)]
        return trials[0] if n == 1 else trials

    def _ask_one_batch_member(self, first: bool) -> Trial:
        x, y = self.observations()
        taken = set() if self.allow_repeats else set(self._seen)
        taken |= {self.space.key(t.params) for t in self.pending.values()}
        cands: list[Candidate] = []
        if len(y) + len(self.pending) < self.n_startup or len(y) == 0:
            xt = self._random_distinct(taken)
        else:
            gp = self._fit(x, y) if first or self._hyper is None else self._gp.set_data(x, y, self._hyper)
            if self.pending:
                xp = np.array([t.x for t in self.pending.values()])
                # kriging believer: the GP's own mean; constant liar: the worst reward seen
                yp = gp.predict(xp)[0] if self.batch == "believer" else np.full(len(xp), float(y.min()))
                gp = GPRegressor().set_data(np.vstack([x, xp]), np.concatenate([y, yp]), self._hyper,
                                            keep_scaling=False)
            prop = maximise_ucb(gp, self.space, kappa=self.kappa(y), rng=self._rng, n_candidates=self.n_candidates)
            if first:
                self.last_proposal = prop
            xt = next((c for c in prop.ranked if self.space.key(self.space.decode(c)) not in taken), None)
            if xt is None:
                xt = self._random_distinct(taken)
            cands = prop.top
        trial = Trial(number=self._next, params=self.space.decode(xt), x=self.space.encode(self.space.decode(xt)),
                      candidates=cands)
        self._next += 1
        self.pending[trial.number] = trial
        if self.log is not None:
            if cands:
                self.log.write_lines(f"trial {trial.number} proposed {trial.params}; top candidates:",
                                     [str(c) for c in cands])
            else:
                self.log.write(f"trial {trial.number} proposed {trial.params} (random start-up)")
        return trial

    # ---- tell --------------------------------------------------------------------------------------
    def _finish(self, trial: Trial, **fields: Any) -> TrialRecord:
        with self._lock:
            return self._finish_locked(trial, **fields)

    def _finish_locked(self, trial: Trial, **fields: Any) -> TrialRecord:
        if trial.number not in self.pending:
            raise InvalidInput(f"trial {trial.number} is not pending (told twice, or never asked)", field="trial")
        del self.pending[trial.number]
        if fields.get("elapsed_sec") is None:
            fields["elapsed_sec"] = time.monotonic() - trial.asked_at
        record = TrialRecord(trial=trial.number, params=trial.params, **fields)
        record.champion = self.champion.consider(record)
        if record.champion and self.champion.champion is not None:
            record.champion_reward = self.champion.champion.reward
        if self.results is not None:
            self.results.append(record)
        self.records.append(record)
        self._seen.add(self.space.key(record.params))
        best = self.best
        status = (f"reward {record.mean_reward:.6g}" if record.ok else f"{record.run_status}: {record.reason}")
        self._note(f"trial {record.trial} {status}; best {best.mean_reward:.6g} (trial {best.trial}); "
                   f"{'crowned ' if record.champion else ''}{self.champion.summary()}" if best else
                   f"trial {record.trial} {status}; no successful trial yet")
        return record

    def tell(self, trial: Trial, value: float | Outcome, *, std_reward: float | None = None,
             model_path: str | None = None, elapsed_sec: float | None = None) -> TrialRecord:
        """Record a finished trial's mean reward (appended to the results before returning).

        Raises:
            InvalidInput: the trial is not pending, or the value is not a finite number.
        """
        if isinstance(value, Outcome):
            value, std_reward, model_path = value.mean_reward, value.std_reward, value.model_path
        number = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise InvalidInput(f"must be a finite number, got {value!r}; use tell_failed for a failed trial",
                               field="value")
        return self._finish(trial, mean_reward=float(value), std_reward=std_reward, model_path=model_path,
                            elapsed_sec=elapsed_sec, run_status="ok")

    def tell_failed(self, trial: Trial, reason: str, *, status: str = "failed",
                    elapsed_sec: float | None = None) -> TrialRecord:
        """Record a trial that produced no reward (crash, timeout); the GP ignores it, it is not proposed again."""
        if status == "ok":
            raise InvalidInput("a failed trial cannot have status ok", field="status", allowed="failed, timeout, ...")
        return self._finish(trial, run_status=status, reason=reason, elapsed_sec=elapsed_sec)

    def cancel(self, trial: Trial) -> None:
        """Forget a pending trial that will not run (nothing is recorded)."""
        with self._lock:
            self.pending.pop(trial.number, None)

    # ---- stopping and the loop ---------------------------------------------------------------------
    def stop_reason(self, n_trials: int | None = None) -> str | None:
        """Why the search should stop now, or None: budget spent, no improvement, or σ small everywhere."""
        if n_trials is not None and self.n_completed >= n_trials:
            return f"budget: {self.n_completed} trials done"
        best = self.best
        if self.patience is not None and best is not None:
            since = sum(1 for r in self.records if r.trial > best.trial)
            if since >= self.patience:
                return f"no improvement in {since} trials (best trial {best.trial})"
        p = self.last_proposal
        if self.min_sigma is not None and p is not None and p.max_sigma < self.min_sigma:
            return f"converged: largest σ over candidates {p.max_sigma:.3g} < {self.min_sigma:.3g}"
        return None

    def run(self, objective: Callable[[dict[str, Any]], float | Outcome], n_trials: int) -> str:
        """Ask, evaluate, tell until ``n_trials`` trials of this search are done or it converges.

        An objective that raises is recorded with ``tell_failed`` and the loop goes on.

        Returns:
            the stop reason (also logged).
        """
        while (reason := self.stop_reason(n_trials)) is None:
            trial = self.ask()
            if (reason := self.stop_reason(n_trials)) is not None:
                self.cancel(trial)
                break
            try:
                value = objective(trial.params)
            except Exception as exc:
                self.tell_failed(trial, f"{type(exc).__name__}: {exc}")
                continue
            self.tell(trial, value)
        self._note(f"search stopped: {reason}")
        return reason

    def gp(self) -> GPRegressor | None:
        """The GP fitted to the current observations (for plots), or None before there are any."""
        x, y = self.observations()
        if len(y) == 0:
            return None
        from flywheel.autoresearch._blas import single_threaded_blas

        with single_threaded_blas():
            return self._fit(x, y)
