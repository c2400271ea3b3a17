"""The SkyPilot runner: a job on a cloud GPU, launched with the `sky` CLI from a task YAML written here.

For each job the runner writes ``<home>/skypilot/<cluster>.yaml`` — resources (the accelerator of the
job's `gpu_type`, spot or on-demand), the source tree as `workdir`, the home mounted from
`FLYWHEEL_SKYPILOT_HOME_BUCKET` at the same absolute path (so every path the database records means the
same on the VM), a `setup` that installs torch first, pinned to the version here, then Flywheel, and a
`run` that is the worker every runner starts: ``python -m flywheel.jobs.worker <job id> --attempt N``.

The worker's credentials are never written to the YAML: `FLYWHEEL_DATABASE_URL` and the per-job token
(`FLYWHEEL_JOB_TOKEN`, see :mod:`flywheel.jobs.tokens`) are declared as `secrets` (SkyPilot ≥ 0.10) and
passed at launch with ``--secret NAME`` from the launcher's environment.

`start` runs ``sky launch -c <cluster> <yaml> -y --down`` in the background (its own process group, its
output — provisioning, then the job's own log lines — appended to the job's log); `--down` tears the
cluster down when the job ends. `poll` asks ``sky queue <cluster>`` (and ``sky status`` when the queue
cannot be read), `kill` runs ``sky cancel`` (graceful: the worker gets SIGTERM and saves a checkpoint) or
``sky down``. With `dry_run` it only writes the YAML and prints it (`flywheel job submit --runner skypilot
--dry-run`, which queues nothing).

Example:
    >>> accelerator("a100"), accelerator("cpu")
    ('A100:1', None)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from flywheel.errors import InvalidInput
from flywheel.jobs.runners.base import Exit, Handle, Runner
from flywheel.jobs.runners.local import process_start_time
from flywheel.settings import get_settings

#: Flywheel GPU type -> SkyPilot accelerator name (one per node). `cpu` asks for no accelerator.
ACCELERATORS = {"t4": "T4", "l4": "L4", "a10g": "A10G", "a100": "A100", "h100": "H100"}
#: The worker's credentials: declared as secrets in the YAML, given at launch from the environment.
SECRETS = ("FLYWHEEL_DATABASE_URL", "FLYWHEEL_JOB_TOKEN")
INSTALL_HINT = ("Install SkyPilot with the extra of your cloud, e.g. `pip install 'skypilot[aws]'` (or [gcp], "
                "[azure], [kubernetes]), then run `sky check`; or use `--dry-run` to only write the task YAML.")
#: `sky queue` states -> whether the job is over.
_ACTIVE = {"INIT", "PENDING", "SETTING_UP", "RUNNING", "STARTING", "RECOVERING"}
_ENDED = {"SUCCEEDED", "FAILED", "FAILED_SETUP", "FAILED_DRIVER", "FAILED_PRECHECKS", "FAILED_CONTROLLER",
          "CANCELLED", "CANCELLING"}


def accelerator(gpu_type: str) -> str | None:
    """SkyPilot's `accelerators` value for a Flywheel GPU type (None for `cpu`).

    Raises:
        InvalidInput: an unknown GPU type, naming the allowed ones.
    """
    if gpu_type == "cpu":
        return None
    name = ACCELERATORS.get(gpu_type)
    if name is None:
        raise InvalidInput(f"unknown GPU type {gpu_type!r} for SkyPilot", field="gpu_type",
                           allowed=["cpu", *sorted(ACCELERATORS)])
    return f"{name}:1"


def cluster_name(job_id: str, attempt: int) -> str:
    """The SkyPilot cluster of one attempt of a job (lowercase letters, digits and dashes).

    Example:
        >>> cluster_name("job_0123456789AB", 1)
        'fw-job-0123456789ab-1'
    """
    return "fw-" + re.sub(r"[^a-z0-9-]", "-", job_id.lower()) + f"-{attempt}"


def source_root() -> Path | None:
    """The source tree this Flywheel runs from (synced as the task's `workdir`), if it is a checkout."""
    import flywheel

    root = Path(flywheel.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def torch_version() -> str:
    """The torch version installed here, which the VM pins first."""
    try:
        return metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        return "2.13.0"


def task_spec(job: Any) -> dict[str, Any]:
    """The SkyPilot task for one attempt of `job` (a Job row) as a dict; see the module doc."""
    settings = get_settings()
    command = f"python -m flywheel.jobs.worker {job.id} --attempt {int(job.attempt)}"
    gpu = accelerator(job.gpu_type)
    torch_index = "" if gpu else " --index-url https://download.pytorch.org/whl/cpu"
    root = source_root()
    install = "pip install --quiet -e ." if root is not None else f"pip install --quiet flywheel=={_own_version()}"
    resources: dict[str, Any] = {"use_spot": bool(job.spot)}
    if gpu:
        resources["accelerators"] = gpu
    else:
        resources["cpus"] = "2+"
    home = str(settings.home.absolute())
    spec: dict[str, Any] = {
        "name": f"flywheel-{job.id}",
        "resources": resources,
        "envs": {
            "FLYWHEEL_JOB_ID": job.id,
            "FLYWHEEL_HOME": home,
            "FLYWHEEL_API_URL": settings.api_url,
            "FLYWHEEL_JOB_HEARTBEAT_S": str(settings.job_heartbeat_s),
            "PYTHONUNBUFFERED": "1",
        },
        "secrets": {name: None for name in SECRETS},
        "setup": "set -e\n"
                 "# torch first, pinned, so no dependency can pull another build\n"
                 f"pip install --quiet torch=={torch_version()}{torch_index}\n"
                 f"{install}\n",
        "run": f"{command}\n",
    }
    if root is not None:
        spec["workdir"] = str(root)
    if settings.skypilot_home_bucket:
        spec["file_mounts"] = {home: {"source": settings.skypilot_home_bucket, "mode": "MOUNT"}}
    return spec


def write_task(job: Any, directory: Path | None = None) -> tuple[Path, str]:
    """Write the task YAML of `job` (crash-safe) and return its path and text."""
    text = f"# SkyPilot task for Flywheel job {job.id}, attempt {job.attempt}. Launch: sky launch -c " \
           f"{cluster_name(job.id, job.attempt)} <this file> -y --down " + \
           " ".join(f"--secret {s}" for s in SECRETS) + "\n" + \
           yaml.dump(task_spec(job), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    folder = directory or get_settings().home.absolute() / "skypilot"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cluster_name(job.id, job.attempt)}.yaml"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path, text


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (setup, run) as literal `|` blocks, as people write SkyPilot YAML."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


class SkyPilotRunner(Runner):
    """Jobs on cloud GPUs through the `sky` CLI; `dry_run` only writes and prints the task YAML."""

    name = "skypilot"

    def __init__(self, *, dry_run: bool = False, sky: str | None = None) -> None:
        """Args:
            dry_run: write and print the YAML, launch nothing.
            sky: the `sky` executable (default: found on PATH).
        """
        self.dry_run = dry_run
        self._sky = sky

    @property
    def sky(self) -> str | None:
        """The `sky` executable, None if SkyPilot is not installed."""
        return self._sky or shutil.which("sky")

    def validate(self, *, gpu_type: str, spot: bool) -> None:
        """Refuse a GPU type SkyPilot cannot name; unless dry-run, refuse when a launch could not work."""
        accelerator(gpu_type)
        if self.dry_run:
            return
        if self.sky is None:
            raise InvalidInput("the SkyPilot CLI `sky` is not installed here", field="runner", hint=INSTALL_HINT)
        settings = get_settings()
        if settings.resolved_database_url().startswith("sqlite"):
            raise InvalidInput("a cloud worker cannot reach this SQLite database", field="runner",
                               hint="Set FLYWHEEL_DATABASE_URL to a PostgreSQL server the VMs can reach.")
        if not settings.skypilot_home_bucket:
            raise InvalidInput("a cloud worker needs the home (blobs, datasets, logs) in a bucket", field="runner",
                               hint="Set FLYWHEEL_SKYPILOT_HOME_BUCKET, e.g. s3://my-flywheel-home.")

    def start(self, job: Any, *, log_path: Path) -> Handle:
        path, text = write_task(job)
        cluster = cluster_name(job.id, job.attempt)
        if self.dry_run:
            sys.stdout.write(text)
            sys.stdout.flush()
            return {"cluster": cluster, "yaml": str(path), "dry_run": True}
        sky = self.sky
        if sky is None:
            raise RuntimeError(f"the SkyPilot CLI `sky` is not installed. {INSTALL_HINT}")
        from flywheel.jobs.tokens import issue_for_job

        env = dict(os.environ)
        env["FLYWHEEL_DATABASE_URL"] = get_settings().resolved_database_url()
        env["FLYWHEEL_JOB_TOKEN"] = issue_for_job(job)
        argv = [sky, "launch", "-c", cluster, str(path), "-y", "--down"]
        for name in SECRETS:
            argv += ["--secret", name]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True, close_fds=True)
        return {"cluster": cluster, "yaml": str(path), "launcher_pid": process.pid,
                "launcher_start_time": process_start_time(process.pid), "host": os.uname().nodename}

    def poll(self, handle: Handle) -> Exit | None:
        if handle.get("dry_run"):
            return Exit(detail="dry run: nothing was launched")
        sky = self.sky
        cluster = handle.get("cluster")
        if sky is None or not cluster:
            return None  # cannot tell from here: heartbeats decide
        state = self._queue_state(sky, cluster)
        if state is None:
            if self._launching(handle):
                return None  # still provisioning: no queue yet
            if self._cluster_exists(sky, cluster) is False:
                return Exit(detail=f"the SkyPilot cluster {cluster} is gone")
            return None
        if state in _ACTIVE:
            return None
        if state == "SUCCEEDED":
            return Exit(code=0)
        return Exit(code=1, detail=f"SkyPilot job {state.lower()} on {cluster}")

    def kill(self, handle: Handle, *, graceful: bool = False) -> None:
        if handle.get("dry_run") or not handle.get("cluster"):
            return
        self._stop_launcher(handle)
        sky = self.sky
        if sky is None:
            return
        argv = [sky, "cancel", handle["cluster"], "--all", "-y"] if graceful else [sky, "down", handle["cluster"], "-y"]
        with contextlib.suppress(OSError):
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, close_fds=True)

    def release(self, handle: Handle) -> None:
        self.kill(handle)  # `sky down` frees the cluster (`--down` does it too once the job ends)

    # --- helpers ---------------------------------------------------------------------------------------

    def _queue_state(self, sky: str, cluster: str) -> str | None:
        """The state of the cluster's job (the last row of `sky queue`), None if it cannot be read."""
        try:
            out = subprocess.run([sky, "queue", cluster], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        return parse_queue(out.stdout)

    def _cluster_exists(self, sky: str, cluster: str) -> bool | None:
        try:
            out = subprocess.run([sky, "status", cluster], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        return any(line.split()[:1] == [cluster] for line in out.stdout.splitlines())

    def _launching(self, handle: Handle) -> bool:
        pid = int(handle.get("launcher_pid") or 0)
        if pid <= 0 or handle.get("host") != os.uname().nodename:
            return False
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it was ours
        started = process_start_time(pid)
        return started is not None and started == handle.get("launcher_start_time")

    def _stop_launcher(self, handle: Handle) -> None:
        if self._launching(handle):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(handle["launcher_pid"]), 15)


def parse_queue(text: str) -> str | None:
    """The state of the newest job in `sky queue` output (a table with a STATUS column), None if none.

    Example:
        >>> parse_queue("ID  TASK  NAME  SUBMITTED  STARTED  DURATION  RESOURCES  STATUS  LOG\\n"
        ...             "1   -     flywheel-job_1  1 min ago  1 min ago  10s  1x[T4:1]  RUNNING  ~/sky_logs/x")
        'RUNNING'
    """
    states = _ACTIVE | _ENDED
    newest: tuple[int, str] | None = None
    for line in text.splitlines():
        words = line.split()
        if not words or not words[0].isdigit():
            continue
        found = [w for w in words if w in states]
        if found and (newest is None or int(words[0]) > newest[0]):
            newest = (int(words[0]), found[-1])
    return newest[1] if newest else None


def _own_version() -> str:
    import flywheel

    return flywheel.__version__


def dry_run_submit(session: Any, user: Any, data: Any) -> tuple[Any, Path, str]:
    """Validate a SkyPilot submission fully, write its task YAML, and queue nothing.

    The job is built by the ordinary :func:`flywheel.jobs.submit.submit` (every check, the estimate, the
    spend limit), its YAML written, then the session is rolled back: nothing is stored. Give it a session
    with nothing else pending.

    Returns:
        The job as it would have been queued (its public form), the YAML's path and its text.
    """
    from flywheel.jobs.schemas import JobPublic
    from flywheel.jobs.submit import submit

    SkyPilotRunner(dry_run=True).validate(gpu_type=data.gpu_type, spot=data.spot)
    try:
        job = submit(session, user, data.model_copy(update={"runner": "local"}))  # only sky's presence differs
        job.runner = SkyPilotRunner.name
        path, text = write_task(job)
        public = JobPublic.model_validate(job)
    finally:
        session.rollback()
    return public, path, text


def dry_run_print(data: Any) -> int:
    """`flywheel job submit --runner skypilot --dry-run`: validate, write and print the YAML; exit code 0.

    Raises:
        InvalidInput: the runner is not `skypilot` (only SkyPilot jobs have a task YAML), or any check fails.
    """
    from flywheel.platform.commands._identity import user_session

    if data.runner != SkyPilotRunner.name:
        raise InvalidInput("--dry-run writes a SkyPilot task YAML", field="dry_run",
                           hint="Use it with --runner skypilot.")
    with user_session() as (session, user):
        job, path, text = dry_run_submit(session, user, data)
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.stderr.write(f"Dry run: wrote {path} for {job.id} (estimated ${job.estimated_cost_usd:.4f}); nothing "
                     "was queued or launched.\n")
    return 0
