"""Who the CLI acts as: FLYWHEEL_API_KEY if set, else the key `flywheel user create` saved.

Example:
    >>> with user_session() as (session, user):  # doctest: +SKIP
    ...     list_projects(session, user)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from flywheel.durable import fsync_dir
from flywheel.errors import Unauthorized
from flywheel.platform.models import User
from flywheel.platform.users import authenticate
from flywheel.settings import get_settings
from flywheel.store.engine import session_scope

ENV_VAR = "FLYWHEEL_API_KEY"
FIX = "Run `flywheel user create <name>` (it saves its key as the CLI's identity), or set FLYWHEEL_API_KEY."


@dataclass(frozen=True)
class Identity:
    """An API key and where it came from (for messages)."""

    api_key: str
    source: str


def resolve_identity() -> Identity | None:
    """The CLI's API key: FLYWHEEL_API_KEY first, then the credentials file; None when there is neither."""
    settings = get_settings()
    if settings.api_key:
        return Identity(settings.api_key.strip(), ENV_VAR)
    path = settings.credentials_path
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return Identity(key, str(path))
    return None


def save_api_key(api_key: str) -> Path:
    """Save `api_key` as the CLI's identity: readable by its owner only (0600), written crash-safely."""
    path = get_settings().credentials_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{api_key}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def current_user(session: Session) -> User:
    """The user the CLI acts as, or Unauthorized saying how to get an identity."""
    identity = resolve_identity()
    if identity is None:
        raise Unauthorized(
            f"no identity: FLYWHEEL_API_KEY is not set and no key is saved in {get_settings().credentials_path}",
            hint=FIX,
        )
    try:
        return authenticate(session, identity.api_key)
    except Unauthorized as exc:
        raise Unauthorized(f"the API key from {identity.source} matches no user in this database", hint=FIX) from exc


@contextmanager
def user_session() -> Iterator[tuple[Session, User]]:
    """A session (committed on success) and the CLI's user."""
    with session_scope() as session:
        yield session, current_user(session)
