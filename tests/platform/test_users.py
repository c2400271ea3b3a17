"""Users and API keys: keys are shown once and stored hashed."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from flywheel.errors import Conflict, Unauthorized
from flywheel.platform.models import User
from flywheel.platform.schemas import UserCreate
from flywheel.platform.users import authenticate, create_user, hash_key


def test_key_is_stored_hashed_and_authenticates(session: Session) -> None:
    user, key = create_user(session, UserCreate(name="ada", spend_limit_usd=25))
    session.commit()
    assert key not in user.api_key_hash and user.api_key_hash == hash_key(key)
    assert authenticate(session, key).id == user.id
    assert user.spend_limit_usd == 25 and user.spend_usd == 0


def test_bad_keys_are_unauthorized(session: Session, user: User) -> None:
    for bad in (None, "", "fw_not-a-real-key"):
        with pytest.raises(Unauthorized):
            authenticate(session, bad)


def test_duplicate_user_name(session: Session, user: User) -> None:
    with pytest.raises(Conflict, match="ada"):
        create_user(session, UserCreate(name="ada"))
