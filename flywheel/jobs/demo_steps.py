"""The demo's job steps: train through the queue (a real, tiny PPO run), then show status, cost and logs.

``flywheel.demo.STEPS`` includes ``JOB_STEPS``. The step submits a job exactly as `flywheel job submit`
does, runs a scheduler in this process until the job ends (as `flywheel worker` would), and prints what
`flywheel job show` and `flywheel job logs` print.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from flywheel.jobs.schemas import JobSubmit
from flywheel.platform.commands._identity import user_session

#: A small but real PPO run on the car track (about ten seconds on one core), billed as a T4 spot GPU.
DEMO_TRAINING = {"total_timesteps": 4096, "n_envs": 1, "n_steps": 256, "batch_size": 64, "n_epochs": 2,
                 "net_arch": [32], "eval_episodes": 2, "env_kwargs": {"max_steps": 200}}


def train_through_the_queue(demo: Any) -> None:
    """Train PPO through the job queue: submit, a scheduler runs it in its own process, follow to the end."""
    from flywheel.jobs.models import TERMINAL_STATUSES, Job
    from flywheel.jobs.scheduler import Scheduler
    from flywheel.jobs.submit import submit
    from flywheel.store.engine import session_scope

    with user_session() as (session, user):
        job = submit(session, user, JobSubmit(template="ppo", project="drive", experiment="ppo-on-the-track",
                                              overrides=DEMO_TRAINING, gpu_type="t4", spot=True,
                                              notes="the demo's training job"))
        job_id = job.id
        demo.ids["job"] = job_id
        demo.note(f"queued {job_id}: iteration #{job.iteration_index}, estimated ${job.estimated_cost_usd:.4f} "
                  f"(t4 spot at ${job.price_per_hour_usd:.2f}/h)")
    stop = threading.Event()
    scheduler = Scheduler(name="demo", slots=1)
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    seen = ""
    try:
        while True:
            with session_scope() as session:
                found = session.get(Job, job_id)
                status, step = found.status, found.step
            if status != seen:
                demo.note(f"{job_id}: {status}" + (f" (step {step})" if step else ""))
                seen = status
            if status in TERMINAL_STATUSES:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=30)


def show_the_job(demo: Any) -> None:
    """Show the job: status, cost, progress, outputs, and the end of its log (kept as an asset)."""
    from flywheel.jobs.access import get_job

    with user_session() as (session, user):
        job = get_job(session, user, demo.ids["job"])
        demo.note(f"status {job.status}{f' ({job.reason})' if job.reason else ''}; {job.step} env steps in "
                  f"{job.elapsed_s:.1f} s; cost: estimated ${job.estimated_cost_usd:.4f}, final "
                  f"${(job.final_cost_usd or 0.0):.6f}")
        demo.note(f"iteration {job.iteration_id}: {len(job.output_asset_ids)} output assets, eval "
                  f"{', '.join(job.eval_ids) or '-'}; log asset {job.log_asset_id}")
        lines = Path(job.log_path).read_text(errors="replace").splitlines()
    for line in lines[-3:]:
        demo.note(f"log | {line}")
    demo.note(f"flywheel job show {demo.ids['job']}   flywheel job logs {demo.ids['job']} --follow")


JOB_STEPS = [train_through_the_queue, show_the_job]
