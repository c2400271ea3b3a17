"""Who am I: the user an API key belongs to.

Users are created by an administrator with `flywheel user create` (which prints the key once); the API
has no sign-up, since there is no admin role yet to guard it.

Example:
    curl -H "Authorization: Bearer $FLYWHEEL_API_KEY" http://127.0.0.1:8000/api/v1/users/me
    # {"id": "usr_…", "name": "ada", "spend_limit_usd": 100.0, "spend_usd": 0.0, "created_at": "…"}
"""

from __future__ import annotations

from fastapi import APIRouter

from flywheel.api.deps import CurrentUser
from flywheel.platform.schemas import UserPublic

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
def read_me(user: CurrentUser) -> UserPublic:
    """The user the request's API key belongs to, with spend limit and current spend."""
    return UserPublic.model_validate(user)
