"""Verification certificates: what was proved (or refuted) about which model, how, with which tools.

One :class:`Certificate` per property. It names the model by the sha256 of its ONNX bytes, carries the
property as declared, the result (``proved`` / ``refuted`` / ``unknown``), the method(s) that settled each
query, the bounds (for proofs) or the replayed counterexample (for refutations), tool versions and the
wall time. :func:`save_certificates` writes them as JSON (crash-safe) next to the model;
:func:`store_certificates` stores them as an asset tagged ``certificate`` of an experiment/iteration.

Example:
    >>> cert = Certificate(model_sha256="ab" * 32, property_name="p", property={}, result="proved",
    ...                    methods=["crown"], queries=[], tool_versions={}, seconds=0.1)
    >>> cert.proved
    True
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

import flywheel

Result = Literal["proved", "refuted", "unknown"]
CERTIFICATE_TAG = "certificate"


class QueryRecord(BaseModel):
    """One query of a property: its verdict and evidence.

    Attributes:
        name: e.g. ``action[0] <= 0.5``.
        result: ``proved``, ``refuted`` or ``unknown``.
        method: what settled it (``crown``, ``alpha-crown``, ``branch-and-bound`` (input splitting),
            ``relu-branch-and-bound``, ``marabou``, ``attack``, ``marabou+polish``), or what ran out.
        bound: the sound upper bound of ``c·f(x) + d`` (≤ 0 proves it), when bounds were computed.
        counterexample: the replayed violation (input, measured value, limit, detail), when refuted.
        spurious: counterexamples a solver gave that did not reproduce in onnxruntime.
        note: why it is unknown (a time limit, a Marabou error).
        seconds: wall time.
    """

    name: str
    result: Result
    method: str
    bound: float | None = None
    counterexample: dict[str, Any] | None = None
    spurious: list[dict[str, Any]] = Field(default_factory=list)
    note: str = ""
    seconds: float = 0.0


class Certificate(BaseModel):
    """The verdict on one property of one model."""

    model_sha256: str
    property_name: str
    property: dict[str, Any]
    result: Result
    methods: list[str]
    queries: list[QueryRecord]
    tool_versions: dict[str, str]
    seconds: float
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def proved(self) -> bool:
        return self.result == "proved"


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the tools a verdict may rest on."""
    out = {"flywheel": flywheel.__version__}
    for name in ("maraboupy", "bound-propagation", "onnxruntime", "onnx", "torch", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def certificate_path(model: Path) -> Path:
    """Where the CLI keeps a model's certificates: ``policy.onnx`` -> ``policy.certificate.json``."""
    model = Path(model)
    return model.with_name(f"{model.stem}.certificate.json")


def save_certificates(certificates: list[Certificate], path: Path) -> Path:
    """Write certificates as a JSON list (temp file, fsync, rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps([c.model_dump(mode="json") for c in certificates], indent=2)
    with tmp.open("w") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path


def load_certificates(path: Path) -> list[Certificate]:
    """Read a JSON list written by :func:`save_certificates`."""
    return [Certificate.model_validate(item) for item in json.loads(Path(path).read_text())]


def store_certificates(session: Any, user: Any, certificates: list[Certificate], *, experiment_id: str,
                       iteration_id: str | None = None, name: str = "certificate.json") -> Any:
    """Store certificates as an asset tagged ``certificate`` (via ``upload_asset``); returns the asset."""
    from flywheel.platform.assets import upload_asset
    from flywheel.platform.schemas import AssetCreate

    data = json.dumps([c.model_dump(mode="json") for c in certificates], indent=2).encode()
    create = AssetCreate(experiment_id=experiment_id, iteration_id=iteration_id, name=name, tags=[CERTIFICATE_TAG])
    return upload_asset(session, user, create, [data])
