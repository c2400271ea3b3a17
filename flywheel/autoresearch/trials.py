"""How the autoresearch loop runs a trial: as a training job (the default), a ``sleep`` job, or a function.

A :class:`TrialRunner` starts a trial and is polled until it has a :class:`TrialResult`; the loop enforces
the per-trial timeout by calling ``cancel``. Three runners:

- :class:`JobTrials`: each trial is a training job of the template through the job system (local or Ray
  runner), with the trial's params as config overrides; the reward is the job's final evaluation
  (``eval/mean_return`` ± ``eval/std_return`` over ``eval_episodes``), the model its ``model.zip`` asset.
  A scheduler runs in a thread of this process (named after the search, so a restarted controller adopts
  the jobs its predecessor left running). A champion candidate is re-evaluated on more episodes and other
  seeds through :func:`flywheel.training.evaluation.evaluate`.
- :class:`SleepJobTrials`: each trial is the job system's trivial ``sleep`` job (no training), scored by a
  Python function of the params: the job path (queue, processes, timeouts, cancel, resume) without the cost
  of training. For tests and benchmarks of the loop.
- :class:`FunctionTrials`: the in-process objective hook, ``params -> reward`` (or an ``Outcome``); no job,
  no timeout enforcement (a Python call cannot be killed). For tests and custom objectives.

Example:
    >>> runner = FunctionTrials(lambda p: -(p["x"] - 0.3) ** 2)
    >>> from flywheel.autoresearch.controller import Trial
    >>> import numpy as np
    >>> running = runner.start(Trial(number=1, params={"x": 0.3}, x=np.zeros(1)))
    >>> runner.poll(running).mean_reward
    -0.0
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.autoresearch.controller import Outcome, Trial
from flywheel.autoresearch.history import TrialRecord
from flywheel.errors import FlywheelError, InvalidInput

Objective = Callable[[dict[str, Any]], "float | Outcome"]


@dataclass
class TrialResult:
    """How a trial ended: ``ok`` with a reward, or ``failed``/``timeout`` with a reason."""

    status: str
    mean_reward: float | None = None
    std_reward: float | None = None
    model_path: str | None = None
    reason: str = ""


@dataclass
class Running:
    """A trial in flight (``started`` is ``time.monotonic()``; ``job_id``/``iteration_id`` for job trials)."""

    trial: Trial
    started: float = field(default_factory=time.monotonic)
    job_id: str | None = None
    iteration_id: str | None = None
    result: TrialResult | None = None


class TrialRunner(ABC):
    """Starts trials and reports how they ended. Subclasses may run them anywhere."""

    #: Whether a trial left running by a killed controller can be picked up again (it outlives its caller).
    durable = False

    def open(self, *, name: str, workers: int) -> None:  # noqa: B027 - optional hook
        """Get ready to run up to ``workers`` trials at once (``name`` identifies the search)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` started."""

    @abstractmethod
    def start(self, trial: Trial) -> Running:
        """Start ``trial``; a trial that cannot start returns a ``Running`` whose ``result`` is set."""

    @abstractmethod
    def poll(self, running: Running) -> TrialResult | None:
        """The result once the trial has ended, else None."""

    def cancel(self, running: Running, reason: str) -> None:  # noqa: B027 - optional hook
        """Stop a trial now (timeout, Ctrl+C): kill what runs."""

    def adopt(self, trial: Trial, *, job_id: str, iteration_id: str | None, age_s: float) -> Running | None:
        """Pick up a trial a killed controller left running (None: cannot; it is abandoned)."""
        return None

    def reevaluate(self, record: TrialRecord) -> float | None:
        """A champion candidate's reward on more episodes and other seeds (None: trust the trial's own)."""
        return None


def _as_result(value: float | Outcome) -> TrialResult:
    if isinstance(value, Outcome):
        return TrialResult("ok", value.mean_reward, value.std_reward, value.model_path)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return TrialResult("failed", reason=f"the objective returned {value!r}, not a finite number")
    return TrialResult("ok", float(value))


class FunctionTrials(TrialRunner):
    """The in-process objective hook: each trial calls ``objective(params)`` in this process.

    Args:
        objective: ``params -> mean reward`` (or an ``Outcome``); an exception fails the trial.
        reevaluate: optional ``record -> reward`` for champion candidates.
    """

    def __init__(self, objective: Objective, *, reevaluate: Callable[[TrialRecord], float] | None = None) -> None:
        self.objective = objective
        self._reevaluate = reevaluate

    def start(self, trial: Trial) -> Running:
        running = Running(trial)
        try:
            running.result = _as_result(self.objective(dict(trial.params)))
        except Exception as exc:
            running.result = TrialResult("failed", reason=f"{type(exc).__name__}: {exc}")
        return running

    def poll(self, running: Running) -> TrialResult | None:
        return running.result

    def reevaluate(self, record: TrialRecord) -> float | None:
        return None if self._reevaluate is None else float(self._reevaluate(record))


def timesteps_bounds_check(space_params: dict[str, Any], low: int, high: int) -> None:
    """Refuse a space whose ``total_timesteps`` range leaves ``[low, high]`` (the --min/--max-timesteps)."""
    p = space_params.get("total_timesteps")
    if p is None:
        return
    lo, hi = getattr(p, "low", None), getattr(p, "high", None)
    if lo is None or hi is None or lo < low or hi > high:
        raise InvalidInput(f"total_timesteps in the space spans [{lo}, {hi}], outside --min-timesteps {low} and "
                           f"--max-timesteps {high}", field="total_timesteps",
                           allowed=f"an int range in [{low}, {high}]")


class JobTrials(TrialRunner):
    """Each trial is a job of the job system; a scheduler thread of this process runs them.

    Args:
        user_id: whose jobs.
        project: project id or name.
        experiment: experiment (created when missing) that collects the trials' iterations.
        template: template id (train jobs).
        base: fixed config overrides under every trial (eval_episodes, env_kwargs, ...).
        timeout_s: each job's time limit (the loop cancels at the same time; the scheduler is the backstop).
        runner: the job runner, ``local`` or ``ray``.
        champion_episodes: episodes of a champion candidate's re-evaluation.
        timesteps: ``(min, max)`` bounds; a trial whose params lack ``total_timesteps`` trains ``max``.
    """

    durable = True
    kind = "train"

    def __init__(self, *, user_id: str, project: str, experiment: str, template: str | None,
                 base: dict[str, Any] | None = None, timeout_s: float = 360.0, runner: str = "local",
                 champion_episodes: int = 30, timesteps: tuple[int, int] | None = None) -> None:
        self.user_id = user_id
        self.project = project
        self.experiment = experiment
        self.template = template
        self.base = dict(base or {})
        self.timeout_s = timeout_s
        self.runner = runner
        self.champion_episodes = champion_episodes
        self.timesteps = timesteps
        self.configs: dict[int, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the scheduler ------------------------------------------------------------------------------
    def open(self, *, name: str, workers: int) -> None:
        from flywheel.jobs.scheduler import Scheduler

        scheduler = Scheduler(name=name, runner=self.runner, slots=workers, per_user=max(workers, 1))
        self._stop.clear()
        self._thread = threading.Thread(target=scheduler.run, args=(self._stop,), daemon=True,
                                        name=f"scheduler {name}")
        self._thread.start()

    def close(self) -> None:
        """Stop the scheduler thread and reap the worker processes it started (no zombies left behind)."""
        from flywheel.jobs.runners import get_runner

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        runner = get_runner(self.runner)
        children = getattr(runner, "children", None)
        if children is None:
            return
        deadline = time.monotonic() + 30  # every job has ended; its worker is only exiting
        for pid in children():
            runner.wait({"pid": pid}, timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[attr-defined]

    # ---- trials -------------------------------------------------------------------------------------
    def overrides(self, params: dict[str, Any]) -> dict[str, Any]:
        """The job config for ``params``: the base, then the params (``total_timesteps`` bounded)."""
        merged = {**self.base, **params}
        if self.timesteps is not None:
            low, high = self.timesteps
            merged["total_timesteps"] = int(min(max(int(merged.get("total_timesteps", high)), low), high))
        return merged

    def start(self, trial: Trial) -> Running:
        from flywheel.jobs.schemas import JobSubmit
        from flywheel.jobs.submit import submit
        from flywheel.platform.models import User
        from flywheel.store.engine import session_scope

        running = Running(trial)
        try:
            with session_scope() as session:
                user = session.get(User, self.user_id)
                job = submit(session, user, JobSubmit(
                    kind=self.kind, template=self.template, project=self.project, experiment=self.experiment,
                    overrides=self.overrides(trial.params), runner=self.runner, max_runtime_s=self.timeout_s,
                    notes=f"autoresearch trial {trial.number}: {trial.params}"))
                running.job_id, running.iteration_id = job.id, job.iteration_id
                self.configs[trial.number] = dict(job.config)
        except FlywheelError as exc:
            running.result = TrialResult("failed", reason=f"not submitted: {exc.message}")
        return running

    def adopt(self, trial: Trial, *, job_id: str, iteration_id: str | None, age_s: float) -> Running | None:
        from flywheel.jobs.models import Job
        from flywheel.store.engine import session_scope

        with session_scope() as session:
            job = session.get(Job, job_id)
            if job is None:
                return None
            self.configs[trial.number] = dict(job.config)
        return Running(trial, started=time.monotonic() - age_s, job_id=job_id, iteration_id=iteration_id)

    def poll(self, running: Running) -> TrialResult | None:
        from flywheel.jobs.models import TERMINAL_STATUSES, Job
        from flywheel.store.engine import session_scope

        if running.result is not None:
            return running.result
        with session_scope() as session:
            job = session.get(Job, running.job_id)
            if job is None:
                return TrialResult("failed", reason=f"job {running.job_id} was deleted")
            if job.status not in TERMINAL_STATUSES:
                return None
            if job.status != "completed":
                status = "timeout" if job.reason == "timeout" else "failed"
                detail = (job.error.strip().splitlines() or [""])[-1][:300]
                return TrialResult(status, reason=f"job {job.id} {job.status}"
                                   f"{f' ({job.reason})' if job.reason else ''}{f': {detail}' if detail else ''}")
            return self._score(session, job, running)

    def _score(self, session: Any, job: Any, running: Running) -> TrialResult:
        from flywheel.blobs import get_blob_store
        from flywheel.platform.models import Asset

        metrics = job.metrics or {}
        mean, std = metrics.get("eval/mean_return"), metrics.get("eval/std_return")
        if mean is None or not math.isfinite(float(mean)):
            return TrialResult("failed", reason=f"job {job.id} completed without a final evaluation")
        model = None
        for asset_id in job.output_asset_ids or []:
            asset = session.get(Asset, asset_id)
            if asset is not None and asset.name == "model.zip":
                model = str(get_blob_store().path(asset.blob_hash))
        return TrialResult("ok", float(mean), None if std is None else float(std), model)

    def cancel(self, running: Running, reason: str) -> None:
        from flywheel.errors import Conflict
        from flywheel.jobs.cancel import cancel
        from flywheel.jobs.models import Job
        from flywheel.store.engine import session_scope

        if running.job_id is None:
            return
        with session_scope() as session:
            job = session.get(Job, running.job_id)
            if job is not None:
                try:
                    cancel(session, job, reason=reason)
                except Conflict:
                    session.rollback()  # it ended on its own meanwhile

    def reevaluate(self, record: TrialRecord) -> float | None:
        """Evaluate the trial's ``model.zip`` on ``champion_episodes`` episodes with fresh seeds."""
        config = self.configs.get(record.trial)
        if config is None or not record.model_path or self.template is None:
            return None
        import torch

        from flywheel.training.evaluation import evaluate
        from flywheel.training.policies import load_policy
        from flywheel.training.templates import parse_config
        from flywheel.training.templates.common import safety_config

        torch.set_num_threads(1)
        parsed = parse_config(self.template, config)
        wrappers: dict[str, Any] = {"safety": safety_config(parsed, evaluation=True)}
        if hasattr(parsed, "discretize"):
            wrappers["discretize"] = parsed.discretize
        kwargs = parsed.eval_env_kwargs if parsed.eval_env_kwargs is not None else parsed.env_kwargs
        policy = load_policy(Path(record.model_path), fmt="zip")
        summary = evaluate(policy, parsed.env_id, kwargs, episodes=self.champion_episodes,
                           seed=parsed.seed + 2_000_000, record=False, **wrappers)
        return float(summary.mean_return)


class SleepJobTrials(JobTrials):
    """Each trial is a ``sleep`` job (no training) scored by ``objective(params)`` once the job completes.

    Args:
        objective: ``params -> reward``.
        seconds: how long each job sleeps, a number or ``params -> seconds`` (a hanging trial: a long sleep).
        **kwargs: as :class:`JobTrials` (``template`` is not used).
    """

    kind = "sleep"

    def __init__(self, objective: Objective, *, seconds: float | Callable[[dict[str, Any]], float] = 0.0,
                 **kwargs: Any) -> None:
        kwargs.setdefault("template", None)
        kwargs.setdefault("timesteps", None)
        super().__init__(**kwargs)
        self.objective = objective
        self.seconds = seconds

    def overrides(self, params: dict[str, Any]) -> dict[str, Any]:
        seconds = self.seconds(params) if callable(self.seconds) else self.seconds
        return {"seconds": float(seconds), "steps": max(1, int(seconds / 0.2))}

    def _score(self, session: Any, job: Any, running: Running) -> TrialResult:
        try:
            return _as_result(self.objective(dict(running.trial.params)))
        except Exception as exc:
            return TrialResult("failed", reason=f"{type(exc).__name__}: {exc}")

    def reevaluate(self, record: TrialRecord) -> float | None:
        return None
