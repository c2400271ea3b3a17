"""The domain exceptions. The API maps them to HTTP codes in one handler, the CLI to one-line fixes."""

from __future__ import annotations

from typing import Any


class FlywheelError(Exception):
    """Base of every error Flywheel raises on purpose.

    Attributes:
        message: what happened, in words a user understands.
        hint: what to do next, if there is something to do.
    """

    status_code = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API answers with."""
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body


class InvalidInput(FlywheelError):
    """A value was wrong. Names the field and, where it can, the allowed values.

    Example:
        >>> str(InvalidInput("must be 1..5", field="n_steer", allowed="1..5"))
        'n_steer: must be 1..5 (allowed: 1..5)'
    """

    status_code = 422

    def __init__(self, message: str, *, field: str | None = None, allowed: Any = None, hint: str | None = None) -> None:
        self.field = field
        self.allowed = allowed
        text = f"{field}: {message}" if field else message
        if allowed is not None:
            text += f" (allowed: {allowed})"
        super().__init__(text, hint=hint)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.field is not None:
            body["field"] = self.field
        if self.allowed is not None:
            body["allowed"] = self.allowed if isinstance(self.allowed, list | str | int | float) else str(self.allowed)
        return body


class NotFound(FlywheelError):
    """The object does not exist, or belongs to someone else (we do not say which)."""

    status_code = 404

    def __init__(self, kind: str, ident: object, *, hint: str | None = None) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!s} not found", hint=hint)


class Conflict(FlywheelError):
    """The request is well formed but clashes with the current state (a cycle, a limit, a running job)."""

    status_code = 409


class Unauthorized(FlywheelError):
    """No valid API key was given."""

    status_code = 401


class IntegrityError(FlywheelError):
    """Stored data is damaged (a blob whose bytes do not match its hash, a truncated file)."""

    status_code = 500
