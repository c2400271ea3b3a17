"""The runner contract: start a job somewhere, find out whether it still runs, stop it.

A runner does not decide anything: the scheduler claims a job, asks the runner to `start` it, stores the
returned handle on the job (JSON, so any process — the API serving a cancel, a restarted scheduler — can
`poll` or `kill` it later), and moves the job through its states. Whatever the runner starts must call
:func:`flywheel.jobs.worker.run_job` (``python -m flywheel.jobs.worker <job id> --attempt N``), which
does the job's own bookkeeping: the move to `running`, heartbeats, outputs, the final state.

Example:
    >>> class Echo(Runner):
    ...     name = "echo"
    ...     def start(self, job, *, log_path):
    ...         return {"started": job}
    ...     def poll(self, handle):
    ...         return Exit(code=0)
    ...     def kill(self, handle, *, graceful=False):
    ...         pass
    >>> Echo().poll(Echo().start("job_1", log_path=None))
    Exit(code=0, signal=None, detail='')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

Handle = dict[str, Any]
"""What a runner needs to find a started job again (pid and process group, a Ray task id, a cluster name)."""


@dataclass(frozen=True)
class Exit:
    """How a job's process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Exited with code 0."""
        return self.code == 0

    def describe(self) -> str:
        """`exit code 3`, `killed by signal 9 (SIGKILL)`, or the detail."""
        if self.signal is not None:
            import signal as signals

            try:
                name = signals.Signals(self.signal).name
            except ValueError:
                name = "?"
            return f"killed by signal {self.signal} ({name})" + (f": {self.detail}" if self.detail else "")
        if self.code is not None:
            return f"exit code {self.code}" + (f": {self.detail}" if self.detail else "")
        return self.detail or "gone"


class Runner(ABC):
    """Where jobs run. Subclasses: `local` (processes here), and `ray` / `skypilot` plug in the same way."""

    name: ClassVar[str]

    def validate(self, *, gpu_type: str, spot: bool) -> None:
        """Refuse, at submission, a job this runner could never run (raise InvalidInput). Default: accept."""
        return

    @abstractmethod
    def start(self, job: Any, *, log_path: Path) -> Handle:
        """Start `job` (its id and attempt) so that it runs `flywheel.jobs.worker.run_job`, with its output
        appended to `log_path`; return the handle. Must not block while the job runs."""

    @abstractmethod
    def poll(self, handle: Handle) -> Exit | None:
        """None while the job's process lives; its Exit once it is gone (reaping it, where that applies)."""

    @abstractmethod
    def kill(self, handle: Handle, *, graceful: bool = False) -> None:
        """Stop the job's process and everything it started. `graceful`: ask first (SIGTERM: the worker
        saves a checkpoint); otherwise kill at once. Killing a job that is gone is not an error."""

    def reap(self) -> None:
        """Collect the exit status of every finished process this runner started (no zombies). Default: nothing."""
        return

    def release(self, handle: Handle) -> None:
        """Free what the job held once it is over (a cluster, a placement group). Default: nothing."""
        return
