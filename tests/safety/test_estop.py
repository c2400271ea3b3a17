"""The emergency-stop latch (both backends): latched until an explicit reset by a user, who and when logged."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, InvalidInput
from flywheel.platform.models import User
from flywheel.safety import estop
from flywheel.safety.estop import EstopGuard
from flywheel.safety.models import EstopEvent
from flywheel.store.engine import make_engine


def _events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(EstopEvent))


def test_stop_latches_every_device_and_logs_who_when_why(session: Session, user: User) -> None:
    before = datetime.now(UTC)
    state = estop.trigger(session, user, reason="person in the cell")
    session.commit()
    assert state.latched and estop.is_latched(session) and estop.is_latched(session, "reachy-01")
    (latch,) = state.latches
    assert (latch.scope, latch.held_by_id, latch.held_by_name, latch.reason) == ("*", user.id, "ada",
                                                                                "person in the cell")
    (event,) = state.events
    assert (event.action, event.user_id, event.user_name, event.scope, event.forced) == (
        "stop", user.id, "ada", "*", False)
    assert before <= event.created_at <= datetime.now(UTC)


def test_the_latch_stays_until_an_explicit_reset(session: Session, user: User, other_user: User) -> None:
    estop.trigger(session, user, "first")
    session.commit()
    again = estop.trigger(session, other_user, "second press")  # logged; the first holder keeps it
    session.commit()
    assert again.latches[0].held_by_name == "ada" and _events(session) == 2
    for _ in range(3):  # nothing resets it by itself: reads, new sessions, polls
        assert estop.status(session).latched
    state = estop.reset(session, user, reason="cell clear")
    session.commit()
    assert not state.latched and not estop.is_latched(session, "any-device") and state.latches == []
    assert [(e.action, e.user_name, e.reason) for e in state.events] == [
        ("reset", "ada", "cell clear"), ("stop", "grace", "second press"), ("stop", "ada", "first")]


def test_another_users_reset_is_refused_unless_forced_with_a_reason(session: Session, user: User,
                                                                     other_user: User) -> None:
    estop.trigger(session, user, "ada's stop")
    session.commit()
    with pytest.raises(Conflict, match="held by ada") as err:
        estop.reset(session, other_user)
    assert "force" in err.value.hint
    session.rollback()
    assert estop.is_latched(session) and _events(session) == 1  # nothing changed
    with pytest.raises(InvalidInput) as bad:
        estop.reset(session, other_user, force=True)
    assert bad.value.field == "reason"
    session.rollback()
    state = estop.reset(session, other_user, reason="ada went home; cell checked", force=True)
    session.commit()
    assert not state.latched
    assert (state.events[0].user_name, state.events[0].forced) == ("grace", True)


def test_device_scopes_latch_alone_and_star_covers_them(session: Session, user: User) -> None:
    estop.trigger(session, user, "cable", scope="reachy-01")
    session.commit()
    assert estop.is_latched(session, "reachy-01") and not estop.is_latched(session, "car-1")
    assert not estop.is_latched(session)  # '*' itself is not latched
    with pytest.raises(Conflict, match="not latched"):
        estop.reset(session, user, scope="*")
    session.rollback()
    estop.trigger(session, user, "all", scope="*")
    estop.reset(session, user, scope="reachy-01")
    session.commit()
    assert estop.is_latched(session, "reachy-01")  # still stopped by '*'
    assert [x.scope for x in estop.status(session).latches] == ["*"]


@pytest.mark.parametrize("scope", ["", "two words", "x" * 101, "robot/1", None])
def test_a_bad_scope_is_refused_and_nothing_is_logged(session: Session, user: User, scope: object) -> None:
    with pytest.raises(InvalidInput) as err:
        estop.trigger(session, user, "r", scope=scope)  # type: ignore[arg-type]
    assert err.value.field == "scope" and "device name" in err.value.allowed
    session.rollback()
    assert _events(session) == 0


def test_the_guard_substitutes_the_safe_action_while_latched(session: Session, user: User) -> None:
    safe = lambda last: np.zeros(2)  # noqa: E731
    guard = EstopGuard(safe, scope="car-1")
    assert guard.filter(np.array([0.3, 0.8])).tolist() == [0.3, 0.8]
    estop.trigger(session, user, "stop the car", scope="car-1")
    session.commit()
    assert guard.filter(np.array([0.3, 0.8])).tolist() == [0.0, 0.0] and guard.latched_at is not None
    estop.reset(session, user, scope="car-1")
    session.commit()
    assert guard.filter(np.array([0.1, 0.2])).tolist() == [0.1, 0.2] and guard.latched_at is None


def test_the_guard_holds_the_last_action_when_the_task_says_hold(session: Session, user: User) -> None:
    from flywheel.safety.limits import ActionDimension, SafetyLayer

    layer = SafetyLayer([ActionDimension("yaw", -45, 45, "deg", scale=45)])  # safe=None: hold
    guard = EstopGuard(layer.safe_action)
    guard.filter(np.array([0.4]))
    estop.trigger(session, user)
    session.commit()
    assert guard.filter(np.array([-0.9])).tolist() == [pytest.approx(0.4)]


def test_an_unreadable_latch_counts_as_latched(tmp_path) -> None:
    broken = make_engine(f"sqlite:///{tmp_path}/missing/dir/../../nope.db")  # no tables
    guard = EstopGuard(lambda last: np.zeros(1), engine=broken)
    assert guard.filter(np.ones(1)).tolist() == [0.0] and guard.error is not None
    broken.dispose()


def test_the_guard_reads_at_most_every_min_interval(session: Session) -> None:
    now = [0.0]
    guard = EstopGuard(lambda last: np.zeros(1), min_interval=0.02, clock=lambda: now[0])
    for t in np.arange(0, 0.1, 0.005):
        now[0] = float(t)
        guard.poll()
    assert guard.polls == 5
