"""The Ray runner: each job runs on a Ray cluster, as the same worker process the local runner starts.

The cluster is `FLYWHEEL_RAY_ADDRESS` (`host:port` of a `ray start --head`, or `ray://…`); without it,
the first job starts a local Ray bound to 127.0.0.1 with authentication off (`RAY_AUTH_MODE=disabled`),
which lives as long as the scheduler process.

Each job is one *detached, named* Ray actor (`flywheel-job-<id>-<attempt>` in the `flywheel` namespace)
that spawns ``python -m flywheel.jobs.worker <job id> --attempt N`` — the very process the local runner
starts — in its own session (process group), with stdout and stderr appended to the job's log. Why a
process under an actor rather than `run_job` called inside a Ray task:

* killing works as it does locally: `kill` signals the job's whole process group (the worker and anything
  it spawned), and a graceful kill is the SIGTERM the worker turns into a checkpoint (a Ray worker runs
  tasks with its own signal handling, and `ray.cancel` kills one process, not a group);
* the job's output goes to the job's log, not into Ray's worker logs; a crash (OOM killer, segfault)
  gives a real exit code or signal; torch and the env do not stay loaded in a reused Ray worker;
* a named detached actor outlives the scheduler that created it, so a restarted scheduler finds it again
  from the handle stored on the job (a plain task dies with its owner and its ObjectRef cannot be rebuilt).

The child gets `PR_SET_PDEATHSIG = SIGKILL`: if the actor dies (its node is lost, it is killed), the job
dies with it, and `poll` reports the actor's death, so the scheduler fails the job instead of waiting
for silence. After its process exits, the actor keeps the exit status until the runner has read it
(`reap`, every scheduler tick) or `linger_s` pass, then ends itself, so a finished job holds no
cluster resources.

A local Ray lives and dies with the scheduler that started it (and its jobs with it: a restarted
scheduler starts a new Ray, finds the old actors gone and fails their jobs). Other processes (the API
serving a cancel) never start a Ray to look for a job: on a local Ray they cannot reach it, and the
worker learns of the cancel at its next heartbeat. Use `FLYWHEEL_RAY_ADDRESS` for jobs that must
outlive the scheduler.

Example:
    >>> RayRunner().name
    'ray'
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from flywheel.jobs.runners.base import Exit, Handle, Runner
from flywheel.settings import get_settings

#: The Ray namespace of job actors (named actors are found again by name in it).
NAMESPACE = "flywheel"
#: How long a job's actor keeps its process's exit status when no runner reads it.
LINGER_S = 300.0
#: How long `poll` waits for an actor's answer before calling the job alive (a busy or pending actor).
POLL_TIMEOUT_S = 2.0
#: Exit statuses kept for `poll` (oldest dropped first).
MAX_EXITS = 10_000

_PR_SET_PDEATHSIG = 1


def ray_module() -> Any:
    """The `ray` package, imported on first use (it is heavy and only this runner needs it)."""
    import ray

    return ray


def actor_name(job_id: str, attempt: int) -> str:
    """The Ray actor name of one attempt of a job.

    Example:
        >>> actor_name("job_0123456789ab", 2)
        'flywheel-job-job_0123456789ab-2'
    """
    return f"flywheel-job-{job_id}-{attempt}"


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the job's worker needs: every `FLYWHEEL_*` setting of this process, made absolute.

    A Ray actor inherits the environment of the raylet, not of the scheduler, so it is passed explicitly.
    """
    settings = get_settings()
    env = {k: v for k, v in os.environ.items() if k.startswith("FLYWHEEL_")}
    env["FLYWHEEL_HOME"] = str(settings.home.absolute())
    env["FLYWHEEL_DATABASE_URL"] = settings.resolved_database_url()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class JobProcess:
    """The Ray actor that babysits one job's worker process (wrapped by `ray.remote` on first use)."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: str, cwd: str | None,
                 linger_s: float = LINGER_S) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
        full_env.update(env)
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        die_with_me = _pdeathsig()
        with path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                cwd=cwd if cwd and Path(cwd).is_dir() else None, start_new_session=True, close_fds=True,
                preexec_fn=die_with_me,
            )
        self.host = socket.gethostname()
        self.read = threading.Event()
        threading.Thread(target=self._linger, args=(linger_s,), daemon=True).start()

    def status(self, *, ack: bool = False) -> dict[str, Any]:
        """The process's pid, group, host and exit code (None while it runs); `ack`: the runner has it."""
        code = self.process.poll()
        if code is not None and ack:
            self.read.set()
        return {"pid": self.process.pid, "pgid": self.process.pid, "host": self.host, "code": code}

    def signal(self, graceful: bool) -> None:
        """SIGTERM (graceful) or SIGKILL to the job's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM if graceful else signal.SIGKILL)

    def _linger(self, linger_s: float) -> None:
        self.process.wait()
        self.read.wait(linger_s)
        import ray

        ray.get_runtime_context().current_actor.__ray_terminate__.remote()


def _pdeathsig() -> Any:
    """A preexec function that makes the child die (SIGKILL) with the actor; None off Linux."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:  # runs in the forked child: no imports, no locks
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return preexec


class RayRunner(Runner):
    """Jobs as worker processes under detached Ray actors, on `FLYWHEEL_RAY_ADDRESS` or a local Ray."""

    name = "ray"

    def __init__(self, *, num_cpus: float = 1.0, linger_s: float = LINGER_S) -> None:
        """Args:
            num_cpus: logical CPUs each job reserves on the cluster.
            linger_s: how long a finished job's actor waits for its exit status to be read.
        """
        self.num_cpus = num_cpus
        self.linger_s = linger_s
        self._actor_cls: Any = None
        self._known: set[str] = set()
        self._exits: dict[str, Exit] = {}
        self._serving = False  # set by the first `reap`: this process is a scheduler of Ray jobs
        self._lock = threading.Lock()

    # --- the cluster ----------------------------------------------------------------------------------

    def connect(self, address: str | None = None) -> str:
        """Connect to the cluster (once per process); its address, or `local` for a Ray started here.

        Args:
            address: the cluster (default `FLYWHEEL_RAY_ADDRESS`; without either, start a local Ray).
        """
        import ray

        address = address or get_settings().ray_address
        with self._lock:
            if not ray.is_initialized():
                if address:
                    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
                else:
                    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, namespace=NAMESPACE,
                             log_to_driver=False)
            if self._actor_cls is None:
                self._actor_cls = ray.remote(max_restarts=0, max_task_retries=0)(JobProcess)
        return address or "local"

    def _reachable(self, handle: Handle) -> bool:
        """Whether this process can reach the handle's cluster (connecting to it if the handle names one).

        A local Ray lives inside the scheduler that started it: another process (the API serving a
        cancel) cannot reach its actors, and must not start a Ray of its own to look for them; the
        worker learns of the cancel at its next heartbeat instead. A scheduler (it calls `reap`) may.
        """
        if ray_module().is_initialized():
            return True
        if self._serving:
            self.connect()  # the scheduler of this runner: its local Ray (a new one after a restart)
            return True
        address = handle.get("address")
        if address and address != "local":
            self.connect(address)
            return True
        return False

    def _actor(self, handle: Handle) -> Any:
        """The job's actor, or None if it no longer exists (the cluster must be reachable)."""
        import ray

        try:
            return ray.get_actor(handle["ray_actor"], namespace=handle.get("namespace", NAMESPACE))
        except ValueError:
            return None

    # --- the contract ---------------------------------------------------------------------------------

    def start(self, job: Any, *, log_path: Path) -> Handle:
        address = self.connect()
        name = actor_name(job.id, job.attempt)
        from flywheel.jobs.tokens import issue_for_job

        extra = {"FLYWHEEL_JOB_TOKEN": issue_for_job(job)}  # for API calls; the worker itself uses the DB
        gpus = 0 if job.gpu_type == "cpu" else 1
        if gpus and address == "local" and ray_module().cluster_resources().get("GPU", 0) < gpus:
            raise RuntimeError(f"the local Ray started here has no GPU for a {job.gpu_type} job; set "
                               "FLYWHEEL_RAY_ADDRESS to a cluster with GPUs, or submit with --gpu cpu")
        actor = self._actor_cls.options(
            name=name, namespace=NAMESPACE, lifetime="detached", num_cpus=self.num_cpus, num_gpus=gpus,
        ).remote([sys.executable, "-m", "flywheel.jobs.worker", job.id, "--attempt", str(job.attempt)],
                 job_env(extra), str(log_path.absolute()), os.getcwd(), self.linger_s)
        with self._lock:
            self._known.add(name)
        return {"ray_actor": name, "namespace": NAMESPACE, "actor_id": actor._actor_id.hex(), "address": address}

    def poll(self, handle: Handle) -> Exit | None:
        import ray
        from ray.exceptions import RayActorError

        name = handle.get("ray_actor")
        if not name:
            return Exit(detail="never started")
        with self._lock:
            known = self._exits.pop(name, None)
        if known is not None:
            return known
        if not self._reachable(handle):
            return None  # another process's local Ray: heartbeats decide
        actor = self._actor(handle)
        if actor is None:
            return Exit(detail="the Ray actor running the job is gone (it died, or ended unread)")
        with self._lock:
            self._known.add(name)
        ref = actor.status.remote()
        ready, _ = ray.wait([ref], timeout=POLL_TIMEOUT_S)
        if not ready:
            return None  # still being placed (no free resources yet) or busy: heartbeats decide
        try:
            status = ray.get(ref)
        except RayActorError as exc:
            return Exit(detail=f"the Ray actor running the job died: {str(exc).splitlines()[0]}")
        return _exit(status["code"])

    def kill(self, handle: Handle, *, graceful: bool = False) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        if not handle.get("ray_actor") or not self._reachable(handle):
            return
        actor = self._actor(handle)
        if actor is None:
            return
        with contextlib.suppress(RayActorError, GetTimeoutError):
            ray.get(actor.signal.remote(graceful), timeout=10)
        if not graceful:
            ray.kill(actor, no_restart=True)  # a job still being placed never starts

    def release(self, handle: Handle) -> None:
        import ray

        if not handle.get("ray_actor") or not self._reachable(handle):
            return
        actor = self._actor(handle)
        if actor is not None:
            ray.kill(actor, no_restart=True)
        with self._lock:
            self._known.discard(handle["ray_actor"])

    def reap(self) -> None:
        """Read the exit status of every finished job actor this runner knows, then let the actor go."""
        import ray
        from ray.exceptions import RayActorError

        self._serving = True
        with self._lock:
            names = list(self._known)
        if not names:
            return
        refs: dict[Any, str] = {}
        for name in names:
            actor = self._actor({"ray_actor": name})
            if actor is None:
                with self._lock:
                    self._known.discard(name)
                continue
            refs[actor.status.remote(ack=True)] = name
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=1.0)
        for ref in ready:
            name = refs[ref]
            try:
                code = ray.get(ref)["code"]
            except RayActorError as exc:
                exit_ = Exit(detail=f"the Ray actor running the job died: {str(exc).splitlines()[0]}")
            else:
                if code is None:
                    continue
                exit_ = _exit(code)
            with self._lock:
                self._exits[name] = exit_
                self._known.discard(name)
                while len(self._exits) > MAX_EXITS:  # exits of jobs that ended themselves are never asked for
                    self._exits.pop(next(iter(self._exits)))

    def wait(self, handle: Handle, timeout: float | None = None) -> Exit | None:
        """Poll until the job's process has exited (tests and benchmarks); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            exit_ = self.poll(handle)
            if exit_ is not None or (deadline is not None and time.monotonic() > deadline):
                return exit_
            time.sleep(0.1)


def _exit(code: int | None) -> Exit | None:
    if code is None:
        return None
    return Exit(signal=-code) if code < 0 else Exit(code=code)
