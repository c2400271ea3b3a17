"""The contract every training template follows: a config model, and a `run` from inputs to outputs.

A template is a small class: an id, a description, a Pydantic config model (its JSON Schema and defaults
go to the template registry), and `run(config, ctx) -> RunResult`. Everything around it — validating
the config, creating the iteration, storing outputs as assets, registering the eval dataset, and later
running it as a job — is the runner's business (`flywheel.training.runner`), so a template reads top to
bottom like a CleanRL script.

Example:
    >>> class MyConfig(TemplateConfig):
    ...     learning_rate: float = 3e-4
    >>> class MyTemplate(Template):
    ...     id = "mine"
    ...     description = "An example."
    ...     config_model = MyConfig
    ...     def run(self, config, ctx):  # doctest: +SKIP
    ...         ...
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from flywheel.datasets.episode import EpisodeArrays


class TemplateConfig(BaseModel):
    """Settings every template shares. Templates subclass it and add their own fields."""

    model_config = ConfigDict(extra="forbid")

    env_id: str = Field("flywheel/Track-v0", description="The Gymnasium task to train on (registered id).")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for gym.make.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds torch, numpy and the environments.")
    total_timesteps: int = Field(20_000, ge=1, le=10**9, description="Environment steps to train for.")
    eval_episodes: int = Field(10, ge=1, le=10_000, description="Episodes of the final evaluation.")
    eval_env_kwargs: dict[str, Any] | None = Field(
        None, description="Environment kwargs for evaluation (e.g. another track); default env_kwargs."
    )
    torch_threads: int = Field(1, ge=1, le=64, description="torch.set_num_threads; 1 is fastest for small nets.")


@dataclass
class RunInputs:
    """What an iteration gives a template: dataset folders and an optional checkpoint to start from."""

    dataset_roots: list[Path] = field(default_factory=list)
    init_checkpoint: Path | None = None


@dataclass
class RunContext:
    """Where a template writes and how it reports progress.

    Attributes:
        workdir: an empty folder; every output file goes inside it.
        inputs: datasets and checkpoint.
        report: called with (step, metrics) as training goes; the job system turns it into heartbeats.
        should_stop: polled by long loops; True asks the template to save a checkpoint and return.
    """

    workdir: Path
    inputs: RunInputs = field(default_factory=RunInputs)
    report: Callable[[int, dict[str, float]], None] = lambda step, metrics: None
    should_stop: Callable[[], bool] = lambda: False

    def metrics_path(self) -> Path:
        """The JSONL metrics history (`{"step": …, "charts/…": …}` one object per line)."""
        return self.workdir / "metrics.jsonl"

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Append one line to the metrics history and report it."""
        with self.metrics_path().open("a") as out:
            out.write(json.dumps({"step": step, **metrics}) + "\n")
        self.report(step, metrics)


@dataclass
class EvalSummary:
    """The outcome of evaluating a policy on N episodes (see `flywheel.training.evaluation`)."""

    mean_return: float
    std_return: float
    returns: list[float]
    lengths: list[int]
    success_rate: float
    task_metrics: dict[str, float] = field(default_factory=dict)
    episodes: list[EpisodeArrays] = field(default_factory=list)
    #: Dataset features of the recorded episodes (``flywheel.training.envs.features_for``), for the eval dataset.
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (without the recorded episodes)."""
        return {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "returns": self.returns,
            "lengths": self.lengths,
            "success_rate": self.success_rate,
            **{f"task/{k}": v for k, v in self.task_metrics.items()},
        }


@dataclass
class RunResult:
    """What a template produced. Paths are inside `RunContext.workdir`.

    Attributes:
        checkpoint: `model.zip`, loadable with the SB3 class named by `algorithm` (`PPO.load`, …).
        algorithm: "PPO", "DQN" or "SAC".
        onnx: the deterministic actor as ONNX (observation -> action).
        evaluation: the final evaluation, with its episodes recorded for the eval dataset.
        env_steps: environment steps used in training (demonstrations included where a template uses them).
        env_episodes: environment episodes used in training (likewise).
        extra_files: more outputs worth keeping as assets (name -> path), e.g. the TensorBoard folder.
    """

    checkpoint: Path
    algorithm: str
    onnx: Path
    evaluation: EvalSummary
    env_steps: int
    env_episodes: int
    extra_files: dict[str, Path] = field(default_factory=dict)


class Template(ABC):
    """A versioned training recipe."""

    id: ClassVar[str]
    version: ClassVar[int] = 1
    description: ClassVar[str]
    config_model: ClassVar[type[TemplateConfig]]

    @abstractmethod
    def run(self, config: TemplateConfig, ctx: RunContext) -> RunResult:
        """Train from `ctx.inputs` with `config`, write outputs under `ctx.workdir`, and evaluate."""
