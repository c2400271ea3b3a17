"""Empty: no image functions in ``.venv-lerobot``."""
