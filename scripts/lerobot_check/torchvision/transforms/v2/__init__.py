"""``torchvision.transforms.v2`` stand-in: the base class LeRobot subclasses at import time."""

import torch

from torchvision.transforms.v2 import functional

__all__ = ["Transform", "functional"]


class Transform(torch.nn.Module):
    """Base class only; LeRobot's image transforms are never built by the check."""
