"""The search state in the database: a run row per search, a trial row per trial, the champion alias.

:class:`RunMirror` writes a trial row when a trial starts (with its job and iteration) and completes it
when its record is in the JSONL. A restarted controller asks it which trials were left running, and a new
search learns from every finished trial of earlier searches of the same project and template
(:meth:`RunMirror.write_prior`).

Example:
    >>> mirror = RunMirror.open(user_id="usr_…", project="drive", results_dir=Path("results"),
    ...                         template="dqn", experiment="autoresearch-dqn", space={}, settings={})  # doctest: +SKIP
    >>> mirror.unfinished()  # doctest: +SKIP
    []
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from flywheel.autoresearch.history import TrialRecord
from flywheel.autoresearch.models import AutoresearchRun, AutoresearchTrial
from flywheel.durable import write_atomic
from flywheel.platform import access
from flywheel.platform.models import User
from flywheel.store.base import new_id, utcnow
from flywheel.store.engine import session_scope


@dataclass(frozen=True)
class Unfinished:
    """A trial row still ``running``: what a restarted controller must adopt or abandon."""

    number: int
    params: dict[str, Any]
    job_id: str | None
    iteration_id: str | None
    age_s: float


class RunMirror:
    """One search's rows. Every method opens its own short transaction (safe to call between trials)."""

    def __init__(self, *, run_id: str, user_id: str, project_id: str, project_name: str) -> None:
        self.run_id = run_id
        self.user_id = user_id
        self.project_id = project_id
        self.project_name = project_name

    @classmethod
    def open(cls, *, user_id: str, project: str, results_dir: Path, template: str, experiment: str,
             space: dict[str, Any], settings: dict[str, Any]) -> RunMirror:
        """The run of ``results_dir`` in ``project`` (created, or resumed when it exists).

        Raises:
            NotFound: the project is not the user's.
        """
        path = str(Path(results_dir).absolute())
        with session_scope() as session:
            user = session.get(User, user_id)
            project_row = access.project(session, user, project)
            run = session.scalars(select(AutoresearchRun).where(
                AutoresearchRun.project_id == project_row.id, AutoresearchRun.results_path == path)).first()
            if run is None:
                run = AutoresearchRun(id=new_id("ars"), owner_id=user_id, project_id=project_row.id,
                                      results_path=path, created_at=utcnow())
                session.add(run)
            run.template, run.experiment, run.space, run.settings = template, experiment, space, settings
            run.status, run.stop_reason, run.updated_at = "running", "", utcnow()
            session.flush()
            return cls(run_id=run.id, user_id=user_id, project_id=project_row.id, project_name=project_row.name)

    def _trial(self, session: Any, number: int) -> AutoresearchTrial:
        row = session.scalars(select(AutoresearchTrial).where(
            AutoresearchTrial.run_id == self.run_id, AutoresearchTrial.number == number)).first()
        if row is None:
            row = AutoresearchTrial(run_id=self.run_id, number=number)
            session.add(row)
        return row

    def started(self, number: int, params: dict[str, Any], *, job_id: str | None,
                iteration_id: str | None) -> None:
        """A trial started (a row reused by a restarted search is reset)."""
        with session_scope() as session:
            row = self._trial(session, number)
            row.params, row.status, row.job_id, row.iteration_id = params, "running", job_id, iteration_id
            row.mean_reward = row.std_reward = row.model_path = row.finished_at = None
            row.champion, row.reason, row.elapsed_s, row.started_at = False, "", 0.0, utcnow()

    def finished(self, record: TrialRecord, *, job_id: str | None = None, iteration_id: str | None = None) -> None:
        """A trial's record is in the JSONL: copy it."""
        with session_scope() as session:
            row = self._trial(session, record.trial)
            row.params, row.status = record.params, record.run_status
            row.mean_reward, row.std_reward, row.model_path = record.mean_reward, record.std_reward, record.model_path
            row.champion, row.reason, row.elapsed_s = record.champion, record.reason or "", record.elapsed_sec
            row.job_id = job_id or row.job_id
            row.iteration_id = iteration_id or row.iteration_id
            row.finished_at = utcnow()

    def unfinished(self) -> list[Unfinished]:
        """Trials a killed controller left ``running``, by number."""
        now = utcnow()
        with session_scope() as session:
            rows = session.scalars(select(AutoresearchTrial).where(
                AutoresearchTrial.run_id == self.run_id, AutoresearchTrial.status == "running")
                .order_by(AutoresearchTrial.number)).all()
            return [Unfinished(r.number, dict(r.params), r.job_id, r.iteration_id,
                               max(0.0, (now - r.started_at).total_seconds())) for r in rows]

    def abandon(self, number: int, reason: str) -> None:
        """A trial that will never report (its in-process objective died with the controller)."""
        with session_scope() as session:
            row = self._trial(session, number)
            row.status, row.reason, row.finished_at = "abandoned", reason, utcnow()

    def iteration_of(self, number: int) -> str | None:
        """The iteration a trial's job filled (None for in-process trials)."""
        with session_scope() as session:
            row = self._trial(session, number)
            return row.iteration_id

    def set_champion(self, iteration_id: str) -> None:
        """Point the project's ``champion`` alias at ``iteration_id``."""
        from flywheel.platform.aliases import set_alias

        with session_scope() as session:
            set_alias(session, session.get(User, self.user_id), self.project_id, "champion", iteration_id)

    def stopped(self, reason: str) -> None:
        """The search ended (budget, convergence, interrupted)."""
        with session_scope() as session:
            run = session.get(AutoresearchRun, self.run_id)
            if run is not None:
                run.status, run.stop_reason, run.updated_at = "stopped", reason, utcnow()

    def write_prior(self, path: Path, template: str) -> int:
        """Write every ``ok`` trial of the project's other searches with ``template`` as JSONL; returns the count.

        The file is a snapshot rewritten at every start (temporary file, fsync, rename); the controller reads
        it as a prior, which keeps only the lines that fit its space.
        """
        with session_scope() as session:
            rows = session.execute(select(AutoresearchTrial.params, AutoresearchTrial.mean_reward)
                                   .join(AutoresearchRun, AutoresearchRun.id == AutoresearchTrial.run_id)
                                   .where(AutoresearchRun.project_id == self.project_id,
                                          AutoresearchRun.template == template,
                                          AutoresearchRun.id != self.run_id,
                                          AutoresearchTrial.status == "ok")
                                   .order_by(AutoresearchTrial.id)).all()
        lines = [json.dumps({"params": params, "mean_reward": reward}) for params, reward in rows
                 if reward is not None]
        write_atomic(path, "".join(line + "\n" for line in lines).encode())
        return len(lines)
