"""Users and their API keys (stored as sha256 hashes; the key itself is shown once)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, NotFound, Unauthorized
from flywheel.platform.models import User
from flywheel.platform.schemas import UserCreate
from flywheel.store import new_id


def hash_key(api_key: str) -> str:
    """The stored form of an API key. Keys are 256 random bits, so a plain sha256 is enough."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_user(session: Session, data: UserCreate) -> tuple[User, str]:
    """Create a user; returns it and its API key (the only time the key is seen).

    Example:
        >>> user, key = create_user(session, UserCreate(name="ada"))  # doctest: +SKIP
    """
    if session.scalars(select(User).where(User.name == data.name)).first() is not None:
        raise Conflict(f"a user named {data.name!r} already exists", hint="Pick another name.")
    api_key = "fw_" + secrets.token_urlsafe(32)
    user = User(id=new_id("usr"), name=data.name, api_key_hash=hash_key(api_key), spend_limit_usd=data.spend_limit_usd)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user named {data.name!r} already exists") from exc
    return user, api_key


def authenticate(session: Session, api_key: str | None) -> User:
    """The user owning `api_key`, or Unauthorized."""
    if not api_key:
        raise Unauthorized("no API key given", hint="Send `Authorization: Bearer <key>` or run `flywheel user create`.")
    user = session.scalars(select(User).where(User.api_key_hash == hash_key(api_key))).first()
    if user is None:
        raise Unauthorized("the API key is not valid", hint="Check FLYWHEEL_API_KEY or create a user.")
    return user


def get_user(session: Session, name_or_id: str) -> User:
    """A user by name or id (administration and tests)."""
    user = session.scalars(select(User).where((User.name == name_or_id) | (User.id == name_or_id))).first()
    if user is None:
        raise NotFound("user", name_or_id)
    return user
