"""The emergency stop's doors on the API: stop, reset, state (see :mod:`flywheel.safety.estop` for the rules).

Any authenticated user can stop; a reset is explicit, by the user who latched the scope (another user needs
``force`` and a reason, logged as forced). The web UI's stop button posts an empty body to the first route.

Example:
    H="Authorization: Bearer $FLYWHEEL_API_KEY"; API=http://127.0.0.1:8000/api/v1
    curl -H "$H" -X POST $API/emergency_stop -H 'Content-Type: application/json' -d '{"reason": "person in cell"}'
    curl -H "$H" $API/emergency_stop
    curl -H "$H" -X POST $API/emergency_stop/reset -H 'Content-Type: application/json' -d '{"reason": "clear"}'
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from flywheel.api.deps import CurrentUser, SessionDep
from flywheel.api.errors import ErrorBody
from flywheel.safety import estop
from flywheel.safety.estop import EstopRequest, EstopResetRequest, EstopState

router = APIRouter(prefix="/emergency_stop", tags=["safety"])

CONFLICT = {409: {"model": ErrorBody, "description": "Not latched, or held by another user (reset with force)."}}


@router.post("")
def emergency_stop(session: SessionDep, user: CurrentUser, body: EstopRequest | None = None) -> EstopState:
    """Latch the emergency stop (default scope `*`: every device). Runtimes obey it at their next tick.

    The answer is sent after the latch is committed. Stopping a latched scope again is logged, nothing else.
    """
    data = body or EstopRequest()
    return estop.trigger(session, user, data.reason, data.scope)


@router.post("/reset", responses=CONFLICT)
def reset_emergency_stop(session: SessionDep, user: CurrentUser, body: EstopResetRequest | None = None) -> EstopState:
    """Release a latch: by the user who latched it, or by another with `force` and a `reason` (logged)."""
    data = body or EstopResetRequest()
    return estop.reset(session, user, data.scope, reason=data.reason, force=data.force)


@router.get("")
def read_emergency_stop(
    session: SessionDep,
    user: CurrentUser,
    scope: Annotated[str, Query(description=f"The scope to report: {estop.SCOPE_ALLOWED}.")] = estop.ALL,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many recent events to list.")] = 20,
) -> EstopState:
    """Latched or not, every latched scope with its holder, and the recent stops and resets (newest first)."""
    return estop.status(session, scope, limit=limit)
