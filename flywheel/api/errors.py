"""Errors to HTTP answers, in one place.

Every `FlywheelError` answers its own `status_code` with its `to_dict()` body; a request that fails
validation answers 422 with the same shape, naming the field. The body always has `error` and `message`:

    {"error": "InvalidInput", "message": "name: String should have at least 1 character",
     "field": "name", "errors": [{"field": "name", "in": "body", "message": "...", "allowed": "min_length=1"}]}

Example:
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> install_error_handlers(app)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from flywheel.errors import FlywheelError, Unauthorized

_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class FieldError(BaseModel):
    """One invalid value of a request."""

    field: str = Field(description="Dotted path of the value, e.g. `showcases.0.eval_id`; `body` for the whole body.")
    location: str = Field(alias="in", description="Where the value was: body, query, path or header.")
    message: str
    allowed: str | None = Field(None, description="The constraint the value broke, e.g. `max_length=200`.")


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: str = Field(description="The kind of error, e.g. `NotFound`, `Conflict`, `InvalidInput`.")
    message: str = Field(description="What happened, in words a user understands.")
    hint: str | None = Field(None, description="What to do next, when there is something to do.")
    field: str | None = Field(None, description="The field that was wrong (validation errors).")
    allowed: Any = Field(None, description="The values the field allows, when known.")
    errors: list[FieldError] | None = Field(None, description="Every invalid value (request validation).")


class UnsupportedMediaType(FlywheelError):
    """The request body is not in the media type the operation takes (HTTP-only, hence here)."""

    status_code = 415


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key (`Authorization: Bearer <key>`)."},
    404: {"model": ErrorBody, "description": "Not found, or not yours."},
    422: {"model": ErrorBody, "description": "Invalid input; the body names the field."},
}
"""Error answers every authenticated operation can give, for the OpenAPI document."""


async def flywheel_error_handler(_request: Request, exc: FlywheelError) -> JSONResponse:
    """The one mapping from domain exceptions to HTTP: `exc.status_code`, body `exc.to_dict()`."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


async def validation_error_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """Request validation failures: 422, naming every invalid field and the constraint it broke."""
    errors = [_field_error(err) for err in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    body = {
        "error": "InvalidInput",
        "message": "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request",
        "field": first["field"],
        "errors": errors,
    }
    if first.get("allowed") is not None:
        body["allowed"] = first["allowed"]
    return JSONResponse(body, status_code=422)


async def http_error_handler(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Routing-level errors (unknown path, wrong method) in the same body shape as the rest."""
    body = {"error": "HTTPError", "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(FlywheelError, flywheel_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error_handler)  # type: ignore[arg-type]


def _field_error(err: dict[str, Any]) -> dict[str, Any]:
    loc = [str(part) for part in err.get("loc", ())]
    location = loc[0] if loc and loc[0] in _LOCATIONS else "body"
    path = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    message = str(err.get("msg", ""))
    ctx = err.get("ctx") or {}
    if err.get("type") == "json_invalid":
        path = []  # the location is a character offset, not a field
        message = f"{message}: {ctx.get('error', '')}".rstrip(": ")
        ctx = {}
    out: dict[str, Any] = {"field": ".".join(path) or location, "in": location, "message": message}
    if ctx:
        out["allowed"] = ", ".join(f"{key}={value}" for key, value in ctx.items() if key != "error") or None
    return out
