"""Fixtures for the Reachy Mini task tests (headless rendering through EGL unless told otherwise)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
