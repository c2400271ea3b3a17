"""What every route depends on: one database session per request, and the user its API key names.

Example:
    >>> from fastapi import APIRouter
    >>> router = APIRouter()
    >>> @router.get("/whoami")
    ... def whoami(user: CurrentUser) -> str:
    ...     return user.name
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlalchemy.orm import Session

from flywheel.errors import Conflict
from flywheel.jobs import tokens
from flywheel.platform import users
from flywheel.platform.models import User
from flywheel.store.engine import get_engine, session_scope


def get_session() -> Iterator[Session]:
    """One session per request: committed when the handler returns, rolled back if it raises.

    The engine comes from the settings at request time, so `FLYWHEEL_DATABASE_URL` set by a test (or an
    operator) is honoured without rebuilding the app. Committing here (before the answer is sent, see
    `scope="function"` below) fires the after-commit hook that deletes blobs nothing references any more.
    A constraint the database enforces itself (two requests creating the same name at once) answers 409.
    """
    try:
        with session_scope(get_engine()) as session:
            yield session
    except DatabaseIntegrityError as exc:
        raise Conflict(
            "the change clashes with data another request stored at the same time",
            hint="Reload and retry: the other change is in place now.",
        ) from exc


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""The request's session; it commits before the response is sent, so a 2xx means the change is stored."""

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="Your Flywheel API key, shown once by `flywheel user create` (`Authorization: Bearer fw_…`), "
    "or a job's worker token (`fwj_…`).",
)


def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user owning the request's API key or job token; 401 (Unauthorized) when missing or not valid.

    A job token (`fwj_…`, given to a job's worker) speaks for the job's user but only about that job:
    :func:`flywheel.jobs.tokens.authorize` refuses every other operation (403) and object (404).
    """
    credential = credentials.credentials if credentials else None
    if credential is None or not tokens.is_job_token(credential):
        return users.authenticate(session, credential)
    user, scope = tokens.authenticate(session, credential)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    tokens.authorize(session, scope, request.method, route, {**request.query_params, **request.path_params})
    session.info["job_scope"] = scope
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
"""The authenticated user of the request."""
