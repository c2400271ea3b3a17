"""Load a trained policy from a file, whatever made it: an SB3 `model.zip` or an exported `model.onnx`.

Example:
    >>> policy = load_policy(Path(".flywheel/runs/itr_0123456789ab/model.onnx"))  # doctest: +SKIP
    >>> action = policy(observation)  # doctest: +SKIP
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from flywheel.errors import InvalidInput

ALGORITHMS = ("PPO", "SAC", "DQN", "TD3", "A2C")


def load_policy(path: Path, *, fmt: str | None = None) -> Any:
    """A policy from `path`: an SB3 model (for .zip) or an `OnnxPolicy` (for .onnx).

    Args:
        path: the file.
        fmt: "zip" or "onnx"; default from the file's suffix, else sniffed from its first bytes.

    Raises:
        InvalidInput: the file is neither, or no SB3 algorithm can load the zip.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", field="model")
    kind = fmt or path.suffix.lstrip(".").lower() or ("zip" if zipfile.is_zipfile(path) else "onnx")
    if kind == "onnx":
        from flywheel.training.onnx_export import onnx_policy

        return onnx_policy(path)
    if kind != "zip":
        raise InvalidInput(f"cannot load {path.name}", field="model", allowed=["model.zip", "model.onnx"])
    import stable_baselines3

    errors = []
    for name in ALGORITHMS:
        try:
            return getattr(stable_baselines3, name).load(str(path), device="cpu")
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}")
    raise InvalidInput(f"{path.name} is not a Stable-Baselines3 model ({'; '.join(errors)})", field="model",
                       allowed=[f"a model.zip saved by {', '.join(ALGORITHMS)}", "model.onnx"])
