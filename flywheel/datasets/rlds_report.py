"""The validation report of an RLDS import: every problem with the episode, field and step named."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an imported episode."""

    episode: str
    field: str
    message: str
    step: int | None = None

    def __str__(self) -> str:
        at = f", step {self.step}" if self.step is not None else ""
        return f"episode {self.episode}{at}, {self.field}: {self.message}"


@dataclass
class ValidationReport:
    """What an import found: counts, and every problem with the episode and field named.

    Invalid episodes are listed here and not yielded by the import.

    Example:
        >>> report = ValidationReport(source="x.jsonl")
        >>> report.ok
        True
    """

    source: str
    episodes_total: int = 0
    episodes_valid: int = 0
    steps_valid: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every episode is valid."""
        return not self.problems

    @property
    def invalid_episodes(self) -> list[str]:
        """The ids of the invalid episodes, in file order."""
        return list(dict.fromkeys(p.episode for p in self.problems))

    def summary(self) -> str:
        """A few lines a user can read."""
        head = f"{self.source}: {self.episodes_valid}/{self.episodes_total} episodes valid, {self.steps_valid} steps"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {**asdict(self), "ok": self.ok, "invalid_episodes": self.invalid_episodes}
