"""Imports every capability's ORM models so that `Base.metadata` knows every table."""

from flywheel.datasets.models import Dataset, Episode
from flywheel.jobs.models import Job
from flywheel.platform.models import Asset, Experiment, Iteration, Project, Showcase, Template, User
from flywheel.safety.models import EstopEvent, EstopLatch

__all__ = [
    "Asset", "Dataset", "Episode", "EstopEvent", "EstopLatch", "Experiment", "Iteration", "Job", "Project", "Showcase",
    "Template", "User",
]
