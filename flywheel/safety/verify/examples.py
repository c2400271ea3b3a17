"""Small example policies as ONNX files, for tests, benchmarks and demos (seeded, torch's default init).

Example:
    >>> path = random_mlp_onnx(Path("/tmp/fw-mlp.onnx"), [4, 8, 2], seed=0)
    >>> load_network(path).out_dim
    2
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flywheel.safety.verify.network import load_network  # noqa: F401  (used by the docstring example)


class _Clip(nn.Module):
    def __init__(self, low: Sequence[float], high: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("low", torch.tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(x, self.high), self.low)  # what PPO's export writes (Min, Max)


def random_mlp(sizes: Sequence[int], *, seed: int, activation: str = "relu") -> nn.Sequential:
    """An MLP ``sizes[0] → … → sizes[-1]`` with torch's default (Kaiming-uniform) init, seeded."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if activation == "relu" else nn.Tanh())
    return nn.Sequential(*layers).eval()


def to_onnx(module: nn.Module, in_dim: int, path: Path) -> Path:
    """Export a torch module ``obs [batch, in_dim] -> action`` like Flywheel's exporter (names obs/action)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(2, in_dim),), str(path), dynamo=False, opset_version=17,
                          input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}})
    return path


def random_mlp_onnx(path: Path, sizes: Sequence[int], *, seed: int, activation: str = "relu",
                    clip: tuple[Sequence[float], Sequence[float]] | None = None) -> Path:
    """:func:`random_mlp` (optionally clipped at the output, as PPO exports) written as ONNX."""
    module: nn.Module = random_mlp(sizes, seed=seed, activation=activation)
    if clip is not None:
        module = nn.Sequential(module, _Clip(*clip))
    return to_onnx(module, sizes[0], path)


def sampled_max_abs(path: Path, low: np.ndarray, high: np.ndarray, *, samples: int, seed: int) -> float:
    """The largest ``|action|`` of the ONNX policy on uniform samples of the box (onnxruntime)."""
    from flywheel.training.onnx_export import onnx_policy

    policy = onnx_policy(path)
    x = np.random.default_rng(seed).uniform(low, high, size=(samples, len(low))).astype(np.float32)
    return float(np.abs(policy(x)).max())
