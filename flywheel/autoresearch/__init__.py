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

from flywheel.autoresearch.champion import Champion, ChampionKeeper
from flywheel.autoresearch.controller import Controller, Outcome, Trial
from flywheel.autoresearch.history import ResultsFile, TrialLog, TrialRecord, load_prior
from flywheel.autoresearch.space import CategoricalParam, FloatParam, IntParam, SearchSpace

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
