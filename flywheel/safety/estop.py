"""The emergency stop: a latch in the database that every process sees, and the guard a control loop polls.

**The latch.** :func:`trigger` latches a *scope* (``*`` = every device, or one device's name) and logs who,
when and why; the latch stays set until :func:`reset`. A device is stopped while its own scope *or* ``*`` is
latched (:func:`is_latched`). Every stop and reset is an :class:`~flywheel.safety.models.EstopEvent` row, so
the history is never lost.

**Who may stop and reset** (the rule the API, the CLI and the UI all go through):

- any authenticated user of the installation can stop any scope, at any time, with or without a reason;
  stopping a latched scope again is logged and changes nothing else;
- a reset is always explicit and by a user (nothing resets by itself, a timeout or a restart never does);
- lockout/tagout: the user who latched a scope (its *holder*) resets it; anyone else is refused
  (:class:`~flywheel.errors.Conflict`, naming the holder) unless they pass ``force=True`` with a reason,
  which is logged as a forced reset;
- resetting a scope that is not latched is refused (Conflict): nothing to reset.

**The guard.** :class:`EstopGuard` is the control-loop side: :meth:`EstopGuard.filter` is called once per
control tick with the policy's action and returns it, or the task's safe action while latched (car: no
throttle, wheels straight; Reachy head: hold the last pose; see
:meth:`~flywheel.safety.limits.SafetyLayer.safe_action`). Each poll is one indexed read of at most two rows
(``min_interval=0``: every tick), so a stop committed by any process is obeyed at the next tick, i.e. within
one control period. A failed read latches too (fail-safe), and the guard stays latched until a read
succeeds and shows the latch reset.

**The UI's stop button** calls the same function as the API: ``POST /api/v1/emergency_stop`` from the browser,
or :func:`stop_button` in-process (it is :func:`trigger` with the reason defaulting to ``"UI stop button"``).

Example:
    >>> state = trigger(session, user, reason="arm hit the table")  # doctest: +SKIP
    >>> is_latched(session)  # doctest: +SKIP
    True
    >>> reset(session, user).latched  # doctest: +SKIP
    False
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, InvalidInput
from flywheel.platform.models import User
from flywheel.safety.models import EstopEvent, EstopLatch
from flywheel.store.base import utcnow

ALL = "*"
#: A device scope: letters, digits and ``_ . : -``, 1..100 characters; or ``*`` for every device.
SCOPE_RE = re.compile(r"^(\*|[A-Za-z0-9_.:-]{1,100})$")
SCOPE_ALLOWED = "'*' (every device) or a device name: 1-100 letters, digits, _ . : -"
UI_REASON = "UI stop button"


# ---------------------------------------------------------------------------------------------- schemas


class EstopRequest(BaseModel):
    """The body of ``POST /emergency_stop``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="Why (free text, logged).")
    scope: str = Field(ALL, description=f"What to stop: {SCOPE_ALLOWED}.")

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        return check_scope(value)


class EstopResetRequest(BaseModel):
    """The body of ``POST /emergency_stop/reset``."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(ALL, description=f"What to release: {SCOPE_ALLOWED}.")
    reason: str = Field("", max_length=500, description="Why it is safe again (required with force).")
    force: bool = Field(False, description="Reset a latch another user holds (logged as forced; needs a reason).")

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        return check_scope(value)


class EstopEventPublic(BaseModel):
    """One logged stop or reset."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    user_id: str | None
    user_name: str
    action: str
    scope: str
    reason: str
    forced: bool


class EstopLatchPublic(BaseModel):
    """A latched scope and who holds it."""

    model_config = ConfigDict(from_attributes=True)

    scope: str
    latched: bool
    held_by_id: str | None
    held_by_name: str
    reason: str
    since: datetime | None


class EstopState(BaseModel):
    """The emergency stop as a person or a UI needs it: latched or not, which scopes, the recent events."""

    scope: str = Field(description="The scope asked about.")
    latched: bool = Field(description="True while this scope or '*' is latched.")
    latches: list[EstopLatchPublic] = Field(description="Every latched scope.")
    events: list[EstopEventPublic] = Field(description="The most recent stops and resets, newest first.")


def check_scope(value: Any, *, field: str = "scope") -> str:
    """Return ``value`` if it is ``*`` or a device name, else raise InvalidInput naming ``field``.

    Example:
        >>> check_scope("reachy-01")
        'reachy-01'
        >>> check_scope("a b")
        Traceback (most recent call last):
        ...
        flywheel.errors.InvalidInput: scope: 'a b' is not a scope (allowed: '*' (every device) or a device name: ...)
    """
    if not isinstance(value, str) or not SCOPE_RE.match(value):
        raise InvalidInput(f"{value!r} is not a scope", field=field, allowed=SCOPE_ALLOWED)
    return value


# ---------------------------------------------------------------------------------------------- service


def trigger(session: Session, user: User, reason: str = "", scope: str = ALL) -> EstopState:
    """Latch ``scope`` (default every device) and log the stop. Never refused for a valid scope.

    Stopping an already latched scope logs the event and keeps the first holder.

    Raises:
        InvalidInput: a bad scope or a reason over 500 characters.

    Example:
        >>> trigger(session, user, "person in the cell").latched  # doctest: +SKIP
        True
    """
    data = EstopRequest(reason=_reason(reason), scope=check_scope(scope))
    event = _log(session, user, "stop", data.scope, data.reason)
    latch = _latch_for_update(session, data.scope)
    if not latch.latched:
        latch.latched = True
        latch.held_by_id, latch.held_by_name = user.id, user.name
        latch.reason, latch.since, latch.event_id = data.reason, event.created_at, event.id
    session.flush()
    return status(session, data.scope)


def stop_button(session: Session, user: User, reason: str = UI_REASON, scope: str = ALL) -> EstopState:
    """The hook for the web UI's stop button: :func:`trigger` with a default reason.

    Example:
        >>> stop_button(session, user).events[0].reason  # doctest: +SKIP
        'UI stop button'
    """
    return trigger(session, user, reason or UI_REASON, scope)


def reset(session: Session, user: User, scope: str = ALL, *, reason: str = "", force: bool = False) -> EstopState:
    """Release the latch of ``scope``, explicitly, as ``user`` (see the module docstring for who may).

    Raises:
        InvalidInput: a bad scope, or ``force`` without a reason (``reason``).
        Conflict: the scope is not latched, or another user holds it and ``force`` is not set.

    Example:
        >>> reset(session, user, reason="cell clear").latched  # doctest: +SKIP
        False
    """
    data = EstopResetRequest(scope=check_scope(scope), reason=_reason(reason), force=force)
    if data.force and not data.reason.strip():
        raise InvalidInput("a forced reset needs a reason", field="reason", allowed="1-500 characters")
    latch = _latch_for_update(session, data.scope)
    if not latch.latched:
        hint = "Nothing to reset." if not _latched(session, ALL) or data.scope == ALL else (
            "The '*' latch stops every device; reset it with scope '*'.")
        raise Conflict(f"emergency stop {data.scope!r} is not latched", hint=hint)
    forced = latch.held_by_id is not None and latch.held_by_id != user.id
    if forced and not data.force:
        raise Conflict(
            f"emergency stop {data.scope!r} is held by {latch.held_by_name} since {latch.since:%Y-%m-%d %H:%M:%S} UTC",
            hint=f"Ask {latch.held_by_name} to reset it, or reset with force and a reason (logged as forced).",
        )
    _log(session, user, "reset", data.scope, data.reason, forced=forced)
    latch.latched = False
    latch.held_by_id, latch.held_by_name, latch.reason, latch.since = None, "", "", None
    session.flush()
    return status(session, data.scope)


def is_latched(session: Session, scope: str = ALL) -> bool:
    """True while ``scope`` or ``*`` is latched.

    Example:
        >>> is_latched(session, "reachy-01")  # doctest: +SKIP
        False
    """
    return _latched(session, check_scope(scope))


def status(session: Session, scope: str = ALL, *, limit: int = 20) -> EstopState:
    """The state of ``scope`` with every latched scope and the ``limit`` most recent events (newest first).

    Raises:
        InvalidInput: a bad scope, or ``limit`` outside 1..1000.
    """
    scope = check_scope(scope)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidInput(f"got {limit!r}", field="limit", allowed="an integer 1..1000")
    latches = session.scalars(select(EstopLatch).where(EstopLatch.latched.is_(True)).order_by(EstopLatch.scope))
    events = session.scalars(select(EstopEvent).order_by(EstopEvent.id.desc()).limit(limit))
    return EstopState(
        scope=scope,
        latched=_latched(session, scope),
        latches=[EstopLatchPublic.model_validate(x) for x in latches],
        events=[EstopEventPublic.model_validate(e) for e in events],
    )


def _reason(reason: Any) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidInput("must be text of at most 500 characters", field="reason", allowed="0-500 characters")
    return reason


def _latched(session: Session, scope: str) -> bool:
    query = select(EstopLatch.scope).where(EstopLatch.scope.in_({scope, ALL}), EstopLatch.latched.is_(True))
    return session.execute(query.limit(1)).first() is not None


def _log(session: Session, user: User, action: str, scope: str, reason: str, *, forced: bool = False) -> EstopEvent:
    event = EstopEvent(user_id=user.id, user_name=user.name, action=action, scope=scope, reason=reason,
                       forced=forced, created_at=utcnow())
    session.add(event)
    session.flush()
    return event


def _latch_for_update(session: Session, scope: str) -> EstopLatch:
    """The scope's latch row, locked for this transaction (PostgreSQL), created if it does not exist yet."""
    query = select(EstopLatch).where(EstopLatch.scope == scope).with_for_update()
    latch = session.scalars(query).first()
    if latch is not None:
        return latch
    try:
        with session.begin_nested():  # two first stops of one scope at once: the loser reads the winner's row
            latch = EstopLatch(scope=scope, latched=False, held_by_name="", reason="")
            session.add(latch)
        return latch
    except DatabaseIntegrityError:
        return session.scalars(query.execution_options(populate_existing=True)).one()


def latch_condition_sql(scope: str) -> Any:
    """The guard's read: the scopes among ``scope`` and ``*`` that are latched (a primary-key lookup)."""
    return select(EstopLatch.scope).where(EstopLatch.scope.in_(sorted({scope, ALL})), EstopLatch.latched.is_(True))


# ---------------------------------------------------------------------------------------------- guard


class EstopGuard:
    """The control-loop side of the emergency stop: poll once per tick, substitute the safe action.

    Args:
        safe_action: ``safe_action(last_action) -> action`` (e.g. ``SafetyLayer.safe_action``).
        scope: the device's scope; it is stopped by its own latch and by ``*``.
        engine: the database (default the settings' database).
        min_interval: seconds between two database reads (0 = every call, i.e. every tick); between reads
            the cached state is used.
        clock: a monotonic clock (tests).

    Attributes:
        latched: the state after the last poll.
        latched_at: ``clock()`` when the guard first saw the current latch (``None`` when not latched).
        error: the last read error (a failed read counts as latched: fail-safe).

    Example:
        >>> guard = EstopGuard(lambda last: np.zeros(2), scope="car-1")  # doctest: +SKIP
        >>> guard.filter(np.array([0.1, 0.8]))  # doctest: +SKIP
        array([0.1, 0.8])
    """

    def __init__(self, safe_action: Callable[[np.ndarray | None], np.ndarray], *, scope: str = ALL,
                 engine: Engine | None = None, min_interval: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from flywheel.store.engine import get_engine

        self.scope = check_scope(scope)
        if not isinstance(min_interval, int | float) or not 0 <= min_interval <= 1:
            raise InvalidInput(f"got {min_interval!r}", field="min_interval", allowed="seconds in [0, 1]")
        self.safe_action = safe_action
        self.engine = engine or get_engine()
        self.min_interval = float(min_interval)
        self.clock = clock
        self.latched = False
        self.latched_at: float | None = None
        self.error: Exception | None = None
        self.polls = 0
        self._next_read = -float("inf")
        self._query = latch_condition_sql(self.scope)
        self._last_action: np.ndarray | None = None
        self._lock = threading.Lock()

    def poll(self) -> bool:
        """Read the latch (at most every ``min_interval`` s) and return whether the device must stop."""
        now = self.clock()
        if now < self._next_read:
            return self.latched
        self._next_read = now + self.min_interval
        try:
            with self.engine.connect() as connection:
                latched = connection.execute(self._query).first() is not None
            self.error = None
        except Exception as exc:  # fail-safe: an unreadable latch is a latched latch
            self.error = exc
            latched = True
        self.polls += 1
        if latched and not self.latched:
            self.latched_at = now
        elif not latched:
            self.latched_at = None
        self.latched = latched
        return latched

    def filter(self, action: Any) -> np.ndarray:
        """The action to send this tick: ``action``, or the safe action while latched."""
        with self._lock:
            if self.poll():
                return np.asarray(self.safe_action(self._last_action))
            self._last_action = np.asarray(action)
            return self._last_action
