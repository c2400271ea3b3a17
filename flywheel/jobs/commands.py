"""`flywheel job …` and `flywheel worker`: queue jobs, watch them, read their logs, run the scheduler.

Usage:
    flywheel worker                                   # the scheduler: runs queued jobs (Ctrl+C stops it)
    flywheel job submit --template ppo --project drive --experiment baseline --set total_timesteps=20000
    flywheel job submit --kind sleep --project drive --experiment queue-test --set seconds=2
    flywheel job list --status running
    flywheel job show job_0123456789ab
    flywheel job logs job_0123456789ab --follow
    flywheel job cancel job_0123456789ab
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from flywheel.cli_output import (
    JsonOpt,
    details,
    emit,
    next_steps,
    parse_key_values,
    print_json,
    say,
    show,
    table,
)
from flywheel.jobs.schemas import JobDetail, JobEventPublic, JobPublic, JobSubmit
from flywheel.platform.commands._identity import user_session

app = typer.Typer(help="Jobs: templated training runs on a queue, with heartbeats, cost and logs.",
                  no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(metavar="JOB", help="Job id (job_…).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                  help="A config value (JSON when it parses). Repeat.",
                                                  show_default=False)]


def submit_options(
    template: str | None, project: str, experiment: str, set_: list[str] | None, dataset: list[str] | None,
    init_asset: str | None, notes: str, kind: str, gpu: str, spot: bool, max_runtime: float | None, runner: str,
) -> JobSubmit:
    """The JobSubmit the command line describes."""
    return JobSubmit(kind=kind, template=template, project=project, experiment=experiment,  # type: ignore[arg-type]
                     overrides=parse_key_values(set_, field="config"), dataset_ids=dataset or [],
                     init_asset_id=init_asset, notes=notes, gpu_type=gpu, spot=spot, max_runtime_s=max_runtime,
                     runner=runner)


@app.command("submit")
def submit_cmd(
    project: Annotated[str, typer.Option("--project", "-p", help="Project id or name.")],
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="Experiment id or name; created if new.")],
    template: Annotated[str | None, typer.Option("--template", "-t", help="Template id (train jobs).",
                                                 show_default=False)] = None,
    set_: SetOpt = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Input dataset. Repeat.",
                                                      show_default=False)] = None,
    init_asset: Annotated[str | None, typer.Option("--init-asset", help="Start from this checkpoint asset.",
                                                   show_default=False)] = None,
    notes: Annotated[str, typer.Option("--notes", "-n", help="What this attempt tries.")] = "",
    kind: Annotated[str, typer.Option(help="train, or sleep (a trivial job for tests and benchmarks).")] = "train",
    gpu: Annotated[str, typer.Option(help="GPU type, for the price: cpu, t4, l4, a10g, a100, h100.")] = "cpu",
    spot: Annotated[bool, typer.Option("--spot/--on-demand", help="Spot or on-demand capacity.")] = False,
    max_runtime: Annotated[float | None, typer.Option(help="Time limit in seconds.", show_default=False)] = None,
    runner: Annotated[str, typer.Option(help="Where it runs: local, ray or skypilot.")] = "local",
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Stream the log until the job ends.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="skypilot: validate, write and print the task YAML; "
                                          "queue nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate and queue a job (nothing is queued if anything is wrong or the estimate crosses your limit)."""
    from flywheel.jobs.submit import submit

    data = submit_options(template, project, experiment, set_, dataset, init_asset, notes, kind, gpu, spot,
                          max_runtime, runner)
    if dry_run:
        from flywheel.jobs.runners.skypilot import dry_run_print

        raise typer.Exit(dry_run_print(data))
    with user_session() as (session, user):
        job = JobPublic.model_validate(submit(session, user, data))

    def render() -> None:
        say(f"Queued {job.id}: iteration #{job.iteration_index} of {job.experiment_id}, "
            f"estimated ${job.estimated_cost_usd:.4f} ({job.gpu_type}{' spot' if job.spot else ''}).")
        if not follow_:
            next_steps(f"flywheel job logs {job.id} --follow", f"flywheel job show {job.id}")

    emit(job, as_json, render)
    if follow_:
        raise typer.Exit(follow_job(job.id))


@app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option(help="Only this status.", show_default=False)] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Your jobs, newest first."""
    from flywheel.jobs.access import list_jobs

    with user_session() as (session, user):
        jobs = [JobPublic.model_validate(j) for j in list_jobs(session, user, status=status, project=project,
                                                                 limit=limit)]
    emit(jobs, as_json, lambda: show(table("Jobs", ["id", "status", "reason", "template", "iteration", "step",
                                                    "cost $", "created"],
                                           [[j.id, j.status, j.reason or "", j.template_id or j.kind,
                                             j.iteration_index, j.step, f"{_cost(j):.4f}", j.created_at]
                                            for j in jobs])))


@app.command("show")
def show_cmd(job: JobArg, as_json: JsonOpt = False) -> None:
    """A job: status and reason, cost, heartbeat, progress, outputs, log, and its transitions."""
    from flywheel.jobs.access import get_job, job_events

    with user_session() as (session, user):
        found = get_job(session, user, job)
        detail = JobDetail.model_validate(found)
        detail.events = [JobEventPublic.model_validate(e) for e in job_events(session, found)]
    emit(detail, as_json, lambda: _render(detail))


@app.command("logs")
def logs_cmd(
    job: JobArg,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")] = False,
) -> None:
    """Print a job's log (stdout and stderr of its worker); `--follow` streams it until the job ends."""
    from flywheel.jobs.access import get_job
    from flywheel.jobs.logs import follow

    with user_session() as (session, user):
        found = get_job(session, user, job)
        path = Path(found.log_path)
    if follow_:
        raise typer.Exit(follow_job(found.id))
    for chunk in follow(path, lambda: True):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()


@app.command("cancel")
def cancel_cmd(job: JobArg, as_json: JsonOpt = False) -> None:
    """Cancel a queued or running job (its processes are killed; log and cost are kept)."""
    from flywheel.jobs.cancel import cancel_job

    with user_session() as (session, user):
        done = JobPublic.model_validate(cancel_job(session, user, job))
    emit(done, as_json, lambda: say(f"Cancelled {done.id} (cost ${_cost(done):.4f})."))


def worker(
    slots: Annotated[int | None, typer.Option(min=1, max=1024, help="Jobs at once (default FLYWHEEL_JOB_SLOTS).",
                                              show_default=False)] = None,
    name: Annotated[str | None, typer.Option(help="Scheduler name; keep it across restarts to adopt its jobs.",
                                             show_default=False)] = None,
    runner: Annotated[str, typer.Option(help="Runner: local, ray or skypilot.")] = "local",
) -> None:
    """Run the scheduler: claim queued jobs (FIFO per user), start them, watch heartbeats, end dead jobs.

    It may be stopped (Ctrl+C, SIGTERM) or killed at any time: running jobs keep running, and the next
    `flywheel worker` with the same name adopts them.
    """
    from flywheel.jobs.scheduler import Scheduler
    from flywheel.store.engine import get_engine

    get_engine()  # migrate once, here, not in every job
    scheduler = Scheduler(name=name, runner=runner, slots=slots)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"Scheduler {scheduler.name}: {scheduler.slots} slot(s), at most {scheduler.per_user} job(s) per "
               f"user, runner {scheduler.runner.name}. Ctrl+C stops it (running jobs keep running).", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.run(stop)


def follow_job(job_id: str, *, quiet: bool = False) -> int:
    """Stream a job's log to stdout until it ends, then print its outcome; 0 if it completed, else 1."""
    from flywheel.jobs.logs import follow
    from flywheel.jobs.models import TERMINAL_STATUSES, Job
    from flywheel.store.engine import session_scope

    def state() -> Job:
        with session_scope() as session:
            found = session.get(Job, job_id)
            session.expunge(found)
            return found

    job = state()
    out = sys.stderr if quiet else sys.stdout  # with --json, stdout carries only the JSON
    for chunk in follow(Path(job.log_path), lambda: state().status in TERMINAL_STATUSES, poll_s=0.25):
        out.buffer.write(chunk)
        out.flush()
    job = state()
    outcome = f"{job.id} {job.status}{f' ({job.reason})' if job.reason else ''}, cost ${_cost(job):.4f}"
    typer.echo(outcome + (f": {job.error.strip().splitlines()[-1]}" if job.error.strip() else ""), err=True)
    return 0 if job.status == "completed" else 1


def _cost(job: Any) -> float:
    return job.final_cost_usd if job.final_cost_usd is not None else job.current_cost_usd


def _render(job: JobDetail) -> None:
    progress = f"step {job.step}, epoch {job.epoch}, {job.elapsed_s:.1f} s"
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(job.metrics.items())[:6])
    show(details(f"Job {job.id}: {job.status}{f' ({job.reason})' if job.reason else ''}", [
        ("kind / template", f"{job.kind} / {job.template_id or '-'} @ {job.template_commit[:12] or '-'}"),
        ("iteration", f"#{job.iteration_index} {job.iteration_id or '-'} of {job.experiment_id}"),
        ("runner", f"{job.runner}, {job.gpu_type} {'spot' if job.spot else 'on-demand'} "
                   f"at ${job.price_per_hour_usd:.2f}/h, attempt {job.attempt}"),
        ("cost", f"estimated ${job.estimated_cost_usd:.4f}, current ${job.current_cost_usd:.4f}, final "
                 + (f"${job.final_cost_usd:.4f}" if job.final_cost_usd is not None else "-")),
        ("progress", progress),
        ("metrics", metrics or "-"),
        ("heartbeat", job.heartbeat_at),
        ("error", job.error.strip().splitlines()[-1] if job.error.strip() else "-"),
        ("outputs", ", ".join(job.output_asset_ids + job.eval_ids) or "-"),
        ("log", f"{job.log_path}" + (f" (asset {job.log_asset_id})" if job.log_asset_id else "")),
    ]))
    show(table("Transitions", ["at", "from", "to", "reason", "message"],
               [[e.at.strftime("%H:%M:%S.%f")[:-3], e.from_status or "-", e.to_status, e.reason, e.message[:80]]
                for e in job.events]))


def submit_and_follow(request: dict[str, Any], *, as_json: bool = False) -> int:
    """`flywheel train` through the queue: submit a train job, follow its log, print the outcome.

    If no `flywheel worker` is running, a scheduler runs in this process (one slot) until the job ends.
    Returns the exit code: 0 if the job completed.
    """
    from flywheel.jobs.scheduler import Scheduler, scheduler_running
    from flywheel.jobs.submit import submit
    from flywheel.store.engine import get_engine

    data = JobSubmit(kind="train", template=request["template"], project=request["project"],
                     experiment=request["experiment"], overrides=request["overrides"],
                     dataset_ids=request["dataset_ids"], init_asset_id=request["init_asset_id"],
                     notes=request["notes"])
    with user_session() as (session, user):
        job = JobPublic.model_validate(submit(session, user, data))
    typer.echo(f"Queued {job.id} (iteration #{job.iteration_index}, estimated ${job.estimated_cost_usd:.4f}).",
               err=True)
    stop = threading.Event()
    thread = None
    if not scheduler_running():
        get_engine()
        scheduler = Scheduler(name=f"train-{job.id}", slots=1)
        thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
        thread.start()
    try:
        code = follow_job(job.id, quiet=as_json)
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
    if as_json:
        from flywheel.jobs.models import Job
        from flywheel.store.engine import session_scope

        with session_scope() as session:
            print_json(JobPublic.model_validate(session.get(Job, job.id)))
    return code
