"""Cost: the price table, per-second billing, estimates, live spend and reconciliation."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from flywheel.errors import InvalidInput
from flywheel.jobs import cost
from flywheel.jobs.ending import end_job
from flywheel.jobs.lifecycle import move
from flywheel.platform.models import User
from tests.jobs.conftest import sleep_job


def test_prices_are_per_gpu_and_capacity_and_cpu_is_free() -> None:
    assert cost.price_per_hour("a100", spot=False) > cost.price_per_hour("a100", spot=True) > 0
    assert cost.price_per_hour("cpu", spot=False) == 0.0
    with pytest.raises(InvalidInput) as caught:
        cost.price_per_hour("tpu-v9", spot=False)
    assert caught.value.field == "gpu_type" and "h100" in caught.value.allowed


def test_billing_is_per_second_and_estimates_respect_the_time_limit() -> None:
    assert cost.cost(3.6, seconds=1) == pytest.approx(0.001)
    assert cost.cost(3.6, seconds=-5) == 0.0
    assert cost.estimate_seconds("train", {"total_timesteps": 20_000}, steps_per_second=1000,
                                 max_runtime_s=1e6) == 20 + cost.OVERHEAD_S
    assert cost.estimate_seconds("sleep", {"seconds": 1e6}, steps_per_second=1000, max_runtime_s=60) == 60


def test_live_spend_counts_running_jobs_and_the_final_cost_settles_once(
    project: object, session: Session, user: User
) -> None:
    job = sleep_job(session, user, gpu_type="h100", seconds=1)
    move(session, job, "provisioning")
    move(session, job, "running")
    job.current_cost_usd = 0.25
    session.flush()
    assert cost.live_spend(session, user) == pytest.approx(0.25)
    end_job(session, job, "completed")
    session.commit()
    assert job.final_cost_usd is not None and job.final_cost_usd < 0.01  # billed from started_at to now
    assert user.spend_usd == pytest.approx(job.final_cost_usd)
    assert cost.live_spend(session, user) == pytest.approx(job.final_cost_usd)


def test_reconcile_records_the_difference_and_counts_it_toward_the_spend(
    project: object, session: Session, user: User
) -> None:
    job = sleep_job(session, user)
    move(session, job, "cancelled")
    job.final_cost_usd = 0.10
    session.flush()
    [entry] = cost.reconcile(session, [(job.id, 0.13)])
    assert (entry.recorded_usd, entry.billed_usd) == (0.10, 0.13)
    assert entry.difference_usd == pytest.approx(0.03)
    assert user.spend_usd == pytest.approx(0.03)
    [again] = cost.reconcile(session, [(job.id, 0.12)])  # a corrected bill replaces the previous one
    assert again.difference_usd == pytest.approx(0.02)
    assert user.spend_usd == pytest.approx(0.02)
    session.commit()


def test_reconcile_refuses_running_jobs_and_negative_amounts(project: object, session: Session, user: User) -> None:
    job = sleep_job(session, user)
    with pytest.raises(InvalidInput, match="finished jobs only"):
        cost.reconcile(session, [(job.id, 1.0)])
    move(session, job, "cancelled")
    job.final_cost_usd = 0.0
    with pytest.raises(InvalidInput, match="negative"):
        cost.reconcile(session, [(job.id, -1.0)])
