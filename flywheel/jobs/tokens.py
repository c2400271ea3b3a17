"""Per-job worker tokens: a worker talks to the API as its job, and only about its job.

A token is ``fwj_<payload>.<signature>``: the payload is base64url JSON naming the job, its attempt, its
user, its inputs (dataset and asset ids) and its outputs (experiment and iteration), and when it expires
(default: the job's time limit plus `FLYWHEEL_JOB_TOKEN_MARGIN_S`); the signature is HMAC-SHA256 of the
payload with a server secret kept in ``<home>/secrets/job-token.key`` (mode 0600, created on first use).
It is sent like an API key: ``Authorization: Bearer fwj_…``.

Authentication (401 for any of these): the signature matches, the token has not expired, its job exists,
belongs to its user, is still queued, provisioning or running, and is on the token's attempt (a token of
an ended or superseded attempt is dead at once, so tokens need no revocation list).

Authorisation lives in one place, :func:`authorize`, which the API's current-user dependency calls for
every request made with a job token. It allows only the operations in :data:`POLICY` and, in them, only
objects in the token's scope. The rule, on purpose:

* an operation a job token may never use (listing projects, submitting or cancelling jobs, deleting
  anything) answers **403** — the token's kind is not allowed there, whatever the object;
* an object outside the scope answers **404**, whether it is another user's or another job's of the same
  user: for the token, nothing outside its job exists, so a leaked token cannot probe which ids are real.

Example:
    >>> scope = JobScope(job_id="job_1", attempt=0, user_id="usr_1", dataset_ids=("dst_1",), asset_ids=(),
    ...                  experiment_id="exp_1", iteration_id="itr_1", expires_at=4102444800)
    >>> verify(sign(scope), now=0) == scope
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flywheel.errors import FlywheelError, IntegrityError, NotFound, Unauthorized
from flywheel.settings import get_settings

PREFIX = "fwj_"
#: Where the signing secret lives, relative to the home.
SECRET_FILE = Path("secrets") / "job-token.key"
#: The API prefix the policy's routes are under.
API_ROOT = "/api/v1"


class Forbidden(FlywheelError):
    """The credentials are valid but may not be used for this operation (a job token outside its job)."""

    status_code = 403


@dataclass(frozen=True)
class JobScope:
    """What one job's token may touch: the job, its user, its inputs and its outputs, until `expires_at`."""

    job_id: str
    attempt: int
    user_id: str
    dataset_ids: tuple[str, ...]
    asset_ids: tuple[str, ...]
    experiment_id: str
    iteration_id: str | None
    expires_at: int


# --- the secret -----------------------------------------------------------------------------------------


def secret_path() -> Path:
    """The signing secret's file under the home."""
    return get_settings().home.absolute() / SECRET_FILE


def load_secret() -> bytes:
    """The server secret: read it, or create it (32 random bytes, mode 0600) on first use.

    Creation is atomic and never overwrites: the secret is written to a private temporary file, fsynced,
    and hard-linked into place; of two processes creating it at once, the second reads the first's.

    Raises:
        IntegrityError: the file is readable by others than its owner, or is not a 64-hex-digit secret.
    """
    path = secret_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IntegrityError(f"the job-token secret {path} has mode {mode:o}; it must be readable by its owner only",
                             hint=f"chmod 600 {path} (and consider deleting it: every job token is re-issued).")
    text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise IntegrityError(f"the job-token secret {path} is damaged", hint="Delete it; a new one is created.")
    return secret


# --- issue and verify -----------------------------------------------------------------------------------


def scope_of(job: Any, *, ttl_s: float | None = None, now: float | None = None) -> JobScope:
    """The scope of `job` (a Job row): its ids, expiring after its time limit plus the margin (or `ttl_s`)."""
    ttl = ttl_s if ttl_s is not None else float(job.max_runtime_s) + get_settings().job_token_margin_s
    return JobScope(
        job_id=job.id, attempt=int(job.attempt), user_id=job.owner_id,
        dataset_ids=tuple(job.input_dataset_ids or ()), asset_ids=tuple(job.input_asset_ids or ()),
        experiment_id=job.experiment_id, iteration_id=job.iteration_id,
        expires_at=int((now if now is not None else time.time()) + ttl),
    )


def issue_for_job(job: Any, *, ttl_s: float | None = None) -> str:
    """A signed token for `job`'s current attempt.

    Example:
        >>> issue_for_job(job)  # doctest: +SKIP
        'fwj_eyJqb2Ii….Yk3…'
    """
    return sign(scope_of(job, ttl_s=ttl_s))


def sign(scope: JobScope) -> str:
    """The token of `scope`, signed with the server secret."""
    body = json.dumps(asdict(scope), separators=(",", ":"), sort_keys=True).encode()
    payload = _b64(body)
    return f"{PREFIX}{payload}.{_b64(_mac(payload))}"


def verify(token: str, *, now: float | None = None) -> JobScope:
    """The scope a token grants, if its signature holds and it has not expired (no database needed).

    Raises:
        Unauthorized: malformed, signed with another secret or altered, or expired.
    """
    if not is_job_token(token) or token.count(".") != 1:
        raise Unauthorized("the job token is malformed", hint="Job tokens look like `fwj_<payload>.<signature>`.")
    payload, signature = token[len(PREFIX):].split(".")
    try:
        given = _unb64(signature)
    except (ValueError, binascii.Error):
        raise Unauthorized("the job token is malformed") from None
    if not hmac.compare_digest(given, _mac(payload)):
        raise Unauthorized("the job token's signature does not match", hint="The token was altered or is not ours.")
    try:
        body = json.loads(_unb64(payload))
        scope = JobScope(**{**body, "dataset_ids": tuple(body["dataset_ids"]), "asset_ids": tuple(body["asset_ids"])})
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise Unauthorized("the job token is malformed") from None
    if (now if now is not None else time.time()) >= scope.expires_at:
        raise Unauthorized("the job token has expired", hint="A token lives as long as its job's time limit.")
    return scope


def is_job_token(credential: str) -> bool:
    """Whether a bearer credential is a job token (rather than an API key)."""
    return credential.startswith(PREFIX)


def authenticate(session: Session, token: str) -> tuple[Any, JobScope]:
    """The token's user and scope, if the token is valid and its job still runs on the token's attempt.

    Raises:
        Unauthorized: see :func:`verify`; or the job is gone, ended, moved to another attempt or owner.
    """
    from flywheel.jobs.models import ACTIVE_STATUSES, Job
    from flywheel.platform.models import User

    scope = verify(token)
    job = session.get(Job, scope.job_id)
    if job is None or job.owner_id != scope.user_id:
        raise Unauthorized("the job token's job does not exist")
    if job.status not in ACTIVE_STATUSES or job.attempt != scope.attempt:
        raise Unauthorized(f"the job token's job has ended ({job.status}) or was restarted",
                           hint="A job token is valid only while its job runs.")
    user = session.get(User, scope.user_id)
    if user is None:
        raise Unauthorized("the job token's user does not exist")
    return user, scope


# --- authorise ------------------------------------------------------------------------------------------

#: What a job token may do: (method, route under /api/v1) -> (parameter, what it must be) checks.
#: Kinds: `job`, `iteration`, `experiment` (equal to the scope's), `dataset` (an input, by id or name),
#: `asset` (an input, or an output of the job's iteration). Every other operation is 403.
POLICY: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("GET", "/users/me"): (),
    ("GET", "/jobs/{job_id}"): (("job_id", "job"),),
    ("GET", "/jobs/{job_id}/logs"): (("job_id", "job"),),
    ("GET", "/iterations/{iteration_id}"): (("iteration_id", "iteration"),),
    ("GET", "/datasets/{dataset}"): (("dataset", "dataset"),),
    ("GET", "/datasets/{dataset}/episodes"): (("dataset", "dataset"),),
    ("GET", "/datasets/{dataset}/episodes/{episode_index}"): (("dataset", "dataset"),),
    ("GET", "/datasets/{dataset}/stats"): (("dataset", "dataset"),),
    ("GET", "/assets/{asset_id}"): (("asset_id", "asset"),),
    ("GET", "/assets/{asset_id}/download"): (("asset_id", "asset"),),
    ("POST", "/assets"): (("experiment_id", "experiment"), ("iteration_id", "iteration")),
}


def authorize(session: Session, scope: JobScope, method: str, route: str, params: Mapping[str, str]) -> None:
    """Allow a request made with a job token, or refuse it: the one place job scopes are checked.

    Args:
        session: the request's session (to resolve dataset names and asset outputs).
        scope: the token's scope.
        method: the HTTP method.
        route: the matched route's path template, e.g. `/api/v1/assets/{asset_id}`.
        params: the request's path and query parameters.

    Raises:
        Forbidden: the operation is not one a job token may use.
        NotFound: an object the operation names is outside the token's scope.
    """
    relative = route[len(API_ROOT):] if route.startswith(API_ROOT) else route
    checks = POLICY.get((method.upper(), relative))
    if checks is None:
        raise Forbidden(f"a job token (job {scope.job_id}) may not use {method.upper()} {route}",
                        hint="Job tokens read their job's inputs and write its outputs; use an API key for the rest.")
    for name, kind in checks:
        value = params.get(name)
        if value is None:
            raise Forbidden(f"a job token must name its {kind} ({name}={_own(scope, kind)})")
        if not _in_scope(session, scope, kind, value):
            raise NotFound(kind, value)


def _own(scope: JobScope, kind: str) -> str:
    return {"job": scope.job_id, "iteration": scope.iteration_id or "", "experiment": scope.experiment_id}.get(kind, "")


def _in_scope(session: Session, scope: JobScope, kind: str, value: str) -> bool:
    if kind in ("job", "iteration", "experiment"):
        return value == _own(scope, kind)
    if kind == "dataset":
        from flywheel.datasets.models import Dataset

        found = session.scalars(select(Dataset.id).where(
            Dataset.owner_id == scope.user_id, or_(Dataset.id == value, Dataset.name == value))).first()
        return found is not None and found in scope.dataset_ids
    if kind == "asset":
        from flywheel.platform.models import Asset

        if value in scope.asset_ids:
            return True
        found = session.get(Asset, value)
        return found is not None and scope.iteration_id is not None and found.iteration_id == scope.iteration_id
    return False


def _mac(payload: str) -> bytes:
    return hmac.new(load_secret(), payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
