"""The manifest written next to an export (origin, counts, file hashes) and the operator anonymiser."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.durable import write_atomic


def anonymiser(salt: str | bytes | None = None) -> Callable[[str], str]:
    """A function mapping operator ids to salted-hash pseudonyms, stable for one salt.

    With no salt a random one is drawn and forgotten, so pseudonyms cannot be linked across exports.

    Example:
        >>> anon = anonymiser("s3cret")
        >>> anon("alice") == anon("alice") != anon("bob")
        True
    """
    key = salt.encode() if isinstance(salt, str) else salt if salt is not None else secrets.token_bytes(16)
    return lambda ident: "op-" + hashlib.sha256(key + b"\0" + str(ident).encode()).hexdigest()[:16]


@dataclass
class ExportManifest:
    """What an export wrote: origin, counts, file hashes and anonymised operators. Saved next to the export."""

    format: str
    origin: str
    fps: int
    episodes: int
    steps: int
    files: list[dict[str, Any]]
    operators: list[str]
    features: dict[str, Any]
    anonymisation: str = "op- + sha256(salt, operator id)[:16]; the salt is not stored"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write the manifest as JSON, crash-safe."""
        write_atomic(Path(path), (json.dumps(self.to_dict(), indent=2) + "\n").encode())


def manifest_path(out_path: Path) -> Path:
    """Where the manifest of an export lives: ``<out_path>.manifest.json``.

    Example:
        >>> manifest_path(Path("/tmp/x.jsonl")).name
        'x.jsonl.manifest.json'
    """
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".manifest.json")


def file_entry(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of one exported file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": Path(path).name, "bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}
