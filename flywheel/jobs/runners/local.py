"""The local runner: each job is its own OS process in its own process group, here on this machine.

`start` spawns ``python -m flywheel.jobs.worker <job id> --attempt N`` in a new session (so it has its
own process group and survives the scheduler being killed), with stdout and stderr appended to the job's
log. The handle names the pid, the process group and the process's start time (from `/proc`), so a pid
that the system reused for another process is never mistaken for the job.

`poll` reaps children this process started (no zombies); for jobs started by an earlier scheduler it
checks `/proc`. `kill` signals the whole group: the worker and anything it spawned.

Example:
    >>> runner = LocalRunner()
    >>> runner.poll({"pid": 2**22 + 1, "pgid": 2**22 + 1, "start_time": 0}).detail
    'process gone'
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from flywheel.jobs.runners.base import Exit, Handle, Runner
from flywheel.settings import get_settings


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def process_state(pid: int) -> str | None:
    """The process's state letter (`R`, `S`, `Z` for a zombie, …), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


class LocalRunner(Runner):
    """Jobs as processes on this machine."""

    name = "local"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._exits: dict[int, int] = {}
        self._lock = threading.Lock()

    def start(self, job: Any, *, log_path: Path) -> Handle:
        settings = get_settings()
        env = dict(os.environ)
        env["FLYWHEEL_HOME"] = str(settings.home.absolute())
        env["FLYWHEEL_DATABASE_URL"] = settings.resolved_database_url()
        env["PYTHONUNBUFFERED"] = "1"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "flywheel.jobs.worker", job.id, "--attempt", str(job.attempt)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, close_fds=True,
            )
        with self._lock:
            self._children[process.pid] = process
        return {"pid": process.pid, "pgid": process.pid, "start_time": process_start_time(process.pid),
                "host": os.uname().nodename}

    def poll(self, handle: Handle) -> Exit | None:
        pid = int(handle.get("pid") or 0)
        if pid <= 0:
            return Exit(detail="never started")
        with self._lock:
            child = self._children.get(pid)
            reaped = self._exits.pop(pid, None)
        if reaped is not None:
            return Exit(signal=-reaped) if reaped < 0 else Exit(code=reaped)
        if child is not None:
            code = child.poll()
            if code is None:
                return None
            with self._lock:
                self._children.pop(pid, None)
            return Exit(signal=-code) if code < 0 else Exit(code=code)
        if handle.get("host") not in (None, os.uname().nodename):
            return None  # another machine's process: only its heartbeats tell
        started = process_start_time(pid)
        if started is None or (handle.get("start_time") is not None and started != handle["start_time"]):
            return Exit(detail="process gone")
        if process_state(pid) == "Z":
            return Exit(detail="process gone (zombie of an earlier scheduler)")
        return None

    def kill(self, handle: Handle, *, graceful: bool = False) -> None:
        pid = int(handle.get("pid") or 0)
        pgid = int(handle.get("pgid") or pid or 0)
        if pgid <= 0 or handle.get("host") not in (None, os.uname().nodename):
            return
        if pid > 0 and handle.get("start_time") is not None:
            started = process_start_time(pid)
            if started is not None and started != handle["start_time"]:
                return  # the pid was reused: that group is not ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM if graceful else signal.SIGKILL)

    def reap(self) -> None:
        with self._lock:
            finished = [pid for pid, child in self._children.items() if child.poll() is not None]
            for pid in finished:
                self._exits[pid] = self._children.pop(pid).returncode

    def wait(self, handle: Handle, timeout: float | None = None) -> Exit | None:
        """Wait for a child this runner started (tests and the CLI); None on timeout."""
        with self._lock:
            child = self._children.get(int(handle.get("pid") or 0))
        if child is None:
            return self.poll(handle)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.poll(handle)

    def children(self) -> list[int]:
        """Pids of the children this runner started and has not reaped yet."""
        with self._lock:
            return list(self._children)
