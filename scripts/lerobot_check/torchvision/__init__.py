"""Import stand-in for torchvision inside ``.venv-lerobot`` only (see ``scripts/lerobot-venv.sh``).

LeRobot's dataset modules import torchvision at module level, but converting a dataset and reading its
state/action frames never call it. Anything that would (image transforms, torchvision video decoding)
raises at once instead of pretending.
"""

from torchvision import io, transforms

__all__ = ["io", "set_video_backend", "transforms"]


def set_video_backend(backend: str) -> None:
    """Refuse: torchvision video decoding is not available in the check venv."""
    raise RuntimeError(f"torchvision video backend {backend!r} is not available in .venv-lerobot")
