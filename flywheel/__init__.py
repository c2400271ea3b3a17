"""Flywheel: a self-improving robot-learning loop."""

__version__ = "0.1.0"
