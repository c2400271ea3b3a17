"""Autoresearch: GP + UCB hyperparameter search with a champion, resumable JSONL history and plots.

Example:
    >>> from flywheel.autoresearch import Controller, SearchSpace
    >>> space = SearchSpace.from_yaml("lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}")
    >>> ctl = Controller(space=space, seed=0)
    >>> trial = ctl.ask()
    >>> record = ctl.tell(trial, 1.0)
    >>> record.trial, record.champion
    (1, True)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flywheel.autoresearch.champion import Champion, ChampionKeeper
    from flywheel.autoresearch.controller import Controller, Outcome, Trial
    from flywheel.autoresearch.history import ResultsFile, TrialLog, TrialRecord, load_prior
    from flywheel.autoresearch.space import CategoricalParam, FloatParam, IntParam, SearchSpace

#: Public name -> the module that defines it. Imported on first use: numpy/scipy stay out of
#: ``import flywheel.models`` (which needs only ``flywheel.autoresearch.models``).
_LAZY = {
    "Champion": "champion", "ChampionKeeper": "champion", "Controller": "controller", "Outcome": "controller",
    "Trial": "controller", "ResultsFile": "history", "TrialLog": "history", "TrialRecord": "history",
    "load_prior": "history", "CategoricalParam": "space", "FloatParam": "space", "IntParam": "space",
    "SearchSpace": "space",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"flywheel.autoresearch.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'flywheel.autoresearch' has no attribute {name!r}")


__all__ = [
    "CategoricalParam",
    "Champion",
    "ChampionKeeper",
    "Controller",
    "FloatParam",
    "IntParam",
    "Outcome",
    "ResultsFile",
    "SearchSpace",
    "Trial",
    "TrialLog",
    "TrialRecord",
    "load_prior",
]
