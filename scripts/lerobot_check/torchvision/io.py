"""Nothing: torchvision.io's readers are not available in ``.venv-lerobot``."""
