"""``torchvision.transforms`` stand-in: imports work, image conversion refuses."""

from typing import Any

from torchvision.transforms import v2

__all__ = ["ToTensor", "v2"]


class ToTensor:
    """Refuses: image features need the real torchvision."""

    def __call__(self, image: Any) -> Any:
        raise RuntimeError("image features need torchvision, which .venv-lerobot does not have")
