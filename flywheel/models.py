"""Imports every capability's ORM models so that `Base.metadata` knows every table."""

from flywheel.autoresearch.models import AutoresearchRun, AutoresearchTrial
from flywheel.datasets.models import Dataset, Episode
from flywheel.jobs.models import Job
from flywheel.platform.aliases import Alias
from flywheel.platform.models import Asset, Experiment, Iteration, Project, Showcase, Template, User
from flywheel.safety.models import EstopEvent, EstopLatch

__all__ = [
    "Alias", "Asset", "AutoresearchRun", "AutoresearchTrial", "Dataset", "Episode", "EstopEvent", "EstopLatch",
    "Experiment", "Iteration", "Job", "Project", "Showcase", "Template", "User",
]
