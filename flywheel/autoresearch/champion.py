"""The champion: the best trial so far, confirmed by a re-evaluation before it is crowned.

A trial whose mean reward beats the champion's is re-evaluated by a caller-given function (more episodes,
other seeds); it is crowned only if the re-evaluated reward still beats the champion's, so one lucky run
cannot take the title. The crowned model is copied to ``<root>/models/champion/model.zip`` and described by
``manifest.json`` next to it, each written to a temporary file, fsynced and renamed. The model is written
first and the manifest records its sha256, so a crash between the two is detected on restore.

Example:
    >>> from flywheel.autoresearch.history import TrialRecord
    >>> keeper = ChampionKeeper()
    >>> [keeper.consider(TrialRecord(trial=i, params={}, mean_reward=r))
    ...  for i, r in enumerate([50, 80, 60, 90, 70], start=1)]
    [True, True, False, True, False]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flywheel.autoresearch.history import TrialRecord, now_iso
from flywheel.durable import copy_atomic, write_atomic

CHAMPION_DIR = Path("models") / "champion"
MANIFEST = "manifest.json"


class Champion(BaseModel):
    """What ``manifest.json`` holds."""

    trial: int
    params: dict[str, Any]
    reward: float
    mean_reward: float
    timestamp: str
    model_path: str | None = None
    champion_path: str | None = None
    sha256: str | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ChampionKeeper:
    """Decides and records the champion of one search.

    Args:
        root: the results folder; the champion goes to ``root/models/champion``. None keeps it in memory only.
        reevaluate: ``record -> reward`` on more episodes/seeds; None trusts the trial's own mean reward.
    """

    def __init__(self, *, root: str | Path | None = None,
                 reevaluate: Callable[[TrialRecord], float] | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self.reevaluate = reevaluate
        self.champion: Champion | None = None
        self.last_reevaluation: float | None = None
        if self.root is not None:
            self.champion = self.restore()

    @property
    def folder(self) -> Path | None:
        """``root/models/champion`` (or None without a root)."""
        return self.root / CHAMPION_DIR if self.root is not None else None

    def restore(self) -> Champion | None:
        """The champion from ``manifest.json``, if any (a model whose sha256 does not match is reported)."""
        folder = self.folder
        if folder is None or not (folder / MANIFEST).exists():
            return None
        champ = Champion.model_validate_json((folder / MANIFEST).read_bytes())
        if champ.champion_path and champ.sha256:
            model = Path(champ.champion_path)
            if not model.exists() or _sha256(model) != champ.sha256:
                import logging

                logging.getLogger(__name__).warning("champion model %s does not match its manifest", model)
        return champ

    def consider(self, record: TrialRecord) -> bool:
        """Re-evaluate ``record`` if it beats the champion and crown it if it still does. Returns crowned."""
        self.last_reevaluation = None
        if not record.ok or record.mean_reward is None:
            return False
        if self.champion is not None and record.mean_reward <= self.champion.reward:
            return False
        confirmed = float(self.reevaluate(record)) if self.reevaluate is not None else record.mean_reward
        self.last_reevaluation = confirmed
        if self.champion is not None and not confirmed > self.champion.reward:
            return False
        self._crown(record, confirmed)
        return True

    def adopt(self, record: TrialRecord) -> None:
        """Take a crowned record from the results file as the champion (memory only, no re-evaluation)."""
        reward = record.champion_reward if record.champion_reward is not None else record.mean_reward
        self.champion = Champion(trial=record.trial, params=record.params, reward=float(reward or 0.0),
                                 mean_reward=float(record.mean_reward or 0.0), timestamp=record.timestamp,
                                 model_path=record.model_path)

    def _crown(self, record: TrialRecord, reward: float) -> None:
        champ = Champion(trial=record.trial, params=record.params, reward=reward,
                         mean_reward=float(record.mean_reward or 0.0), timestamp=now_iso(),
                         model_path=record.model_path)
        folder = self.folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            src = Path(record.model_path) if record.model_path else None
            if src is not None and src.is_file():
                dest = folder / "model.zip"
                copy_atomic(src, dest)
                champ.champion_path = str(dest)
                champ.sha256 = _sha256(dest)
            write_atomic(folder / MANIFEST, (champ.model_dump_json(indent=2) + "\n").encode())
        self.champion = champ

    def summary(self) -> str:
        """One line for the console and the log."""
        c = self.champion
        if c is None:
            return "no champion yet"
        return (f"champion: trial {c.trial} reward {c.reward:.4g} (trial mean {c.mean_reward:.4g}) "
                f"{json.dumps(c.params)}")
