"""The queue: FIFO per user, the per-user limit, exactly-once claims under concurrency, the spend limit."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flywheel.jobs.models import Job
from flywheel.jobs.queue import claim_next, requeue
from flywheel.platform.models import User
from flywheel.platform.projects import create_project
from flywheel.platform.schemas import ProjectCreate
from flywheel.store.engine import get_engine
from tests.jobs.conftest import sleep_job


def _claim(session: Session, per_user: int = 2) -> Job | None:
    job = claim_next(session, scheduler="test", runner="local", per_user=per_user)
    session.commit()
    return job


def test_jobs_are_claimed_fifo_per_user_within_the_per_user_limit(
    project: object, session: Session, user: User, other_user: User
) -> None:
    create_project(session, other_user, ProjectCreate(name="jobs"))
    mine = [sleep_job(session, user).id for _ in range(3)]
    theirs = [sleep_job(session, other_user).id for _ in range(2)]
    claimed = [_claim(session, per_user=2) for _ in range(5)]
    ids = [job.id for job in claimed if job is not None]
    assert [i for i in ids if i in mine] == mine[:2]  # the third waits: limit 2
    assert [i for i in ids if i in theirs] == theirs
    assert claimed[-1] is None
    assert all(job.status == "provisioning" and job.claimed_by == "test" for job in claimed if job)


def test_a_user_over_the_spend_limit_gets_no_job_and_their_queue_is_cancelled(
    project: object, session: Session, user: User
) -> None:
    ids = [sleep_job(session, user).id for _ in range(2)]
    user.spend_usd = user.spend_limit_usd
    session.commit()
    assert _claim(session) is None
    jobs = session.scalars(select(Job).where(Job.id.in_(ids))).all()
    assert {(j.status, j.reason) for j in jobs} == {("cancelled", "spend limit")}


def test_concurrent_claimers_never_claim_a_job_twice_nor_exceed_the_limit(
    project: object, session: Session, user: User
) -> None:
    ids = [sleep_job(session, user).id for _ in range(12)]
    factory = sessionmaker(bind=get_engine(), expire_on_commit=False)
    claims: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        for _ in range(6):
            with factory() as mine:
                job = claim_next(mine, scheduler=name, runner="local", per_user=5)
                mine.commit()
            if job is not None:
                with lock:
                    claims.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"s{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claims) == len(set(claims)) == 5  # the user's limit, each job once
    assert claims == sorted(claims, key=ids.index)  # still FIFO
    session.expire_all()
    assert sorted(session.scalars(select(Job.id).where(Job.status == "provisioning"))) == sorted(claims)


def test_a_requeued_job_keeps_its_place_and_gets_a_new_attempt(project: object, session: Session, user: User) -> None:
    first = sleep_job(session, user)
    second = sleep_job(session, user)
    job = _claim(session)
    requeue(session, job, "claimed but never started")
    session.commit()
    assert (job.status, job.attempt) == ("queued", 1)
    assert _claim(session).id == first.id
    assert _claim(session).id == second.id
