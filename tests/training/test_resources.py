"""Every template releases what it opened (envs, the evaluation env, TensorBoard's writer thread and event file)
whether the run returns or raises mid-way: a process that runs templates in-process must not leak per failed run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from flywheel.errors import InvalidInput
from flywheel.training import envs as training_envs
from flywheel.training import evaluation
from flywheel.training.base import RunContext, RunInputs, RunResult
from flywheel.training.demos import record_demos
from flywheel.training.templates import TEMPLATES, parse_config, runtime
from flywheel.training.templates.runtime import Resources

TRACK = {"max_steps": 50}
COMMON = {"env_kwargs": TRACK, "eval_episodes": 1, "net_arch": [16], "seed": 5}
RUNS: dict[str, dict[str, Any]] = {
    "ppo": {"total_timesteps": 512, "n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 1, "eval_every": 128},
    "dqn": {"total_timesteps": 300, "learning_starts": 50, "target_update_interval": 50, "eval_every": 100},
    "sac": {"total_timesteps": 300, "learning_starts": 50, "batch_size": 32, "eval_every": 100},
    "bc": {"bc_epochs": 3, "value_epochs": 2},
    "dagger": {"iterations": 3, "episodes_per_iteration": 1, "bc_epochs": 3},
    "bc_ppo": {"total_timesteps": 256, "n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1,
               "bc_epochs": 3, "value_epochs": 2, "eval_every": 64},
}
#: The step (of one training env copy) at which it crashes: after a logger dump and an evaluation, mid-training.
CRASH_AT = {"ppo": 200, "dqn": 220, "sac": 220, "dagger": 120, "bc_ppo": 100}


class EnvCrashed(RuntimeError):
    """What a crashing test env raises."""


class Tracked(gym.Wrapper):
    """An env that remembers whether it was closed and, with ``crash_at``, raises on that step of its life."""

    def __init__(self, env: gym.Env, tracker: Tracker, kind: str) -> None:
        super().__init__(env)
        self.tracker = tracker
        self.kind = kind
        self.steps = 0
        self.closed = False

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.kind == "train" and self.steps == self.tracker.crash_at:
            self.tracker.open_at_crash = [file for file in self.tracker.event_files if not file.closed]
            raise EnvCrashed(f"simulated crash at step {self.steps}")
        return super().step(action)

    def close(self) -> None:
        self.closed = True
        super().close()


@dataclass
class Tracker:
    """Every env the templates made in one test (``train``: training/rollout envs, ``eval``: the callback's,
    ``final``: :func:`~flywheel.training.evaluation.evaluate`'s), every TensorBoard event file of their SB3
    loggers, and the crash to inject into training envs."""

    crash_at: int | None = None
    made: list[Tracked] = field(default_factory=list)
    event_files: list[Any] = field(default_factory=list)
    open_at_crash: list[Any] = field(default_factory=list)

    def factory(self, make: Callable[..., gym.Env], kind: str) -> Callable[..., gym.Env]:
        def tracked(*args: Any, **kwargs: Any) -> gym.Env:
            self.made.append(Tracked(make(*args, **kwargs), self, kind))
            return self.made[-1]
        return tracked

    def logger(self, make: Callable[[RunContext], Any]) -> Callable[[RunContext], Any]:
        def tracked(ctx: RunContext) -> Any:
            from stable_baselines3.common.logger import TensorBoardOutputFormat

            logger = make(ctx)
            # TensorBoard's GFile: it opens the file for each append, so "closed" is its own flag, not an fd
            self.event_files += [fmt.writer.file_writer.event_writer._general_file_writer
                                 for fmt in logger.output_formats if isinstance(fmt, TensorBoardOutputFormat)]
            return logger
        return tracked

    def kinds(self) -> set[str]:
        return {env.kind for env in self.made}


@pytest.fixture
def envs(monkeypatch: pytest.MonkeyPatch) -> Tracker:
    """Track every env the templates build (each module's ``make_env``) and every SB3 logger's event file."""
    tracker = Tracker()
    make = training_envs.make_env
    monkeypatch.setattr(training_envs, "make_env", tracker.factory(make, "train"))
    monkeypatch.setattr(runtime, "make_env", tracker.factory(make, "eval"))
    monkeypatch.setattr(evaluation, "make_env", tracker.factory(make, "final"))
    monkeypatch.setattr(runtime, "sb3_logger", tracker.logger(runtime.sb3_logger))
    return tracker


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One expert episode of Track-v0 (for ``bc`` and ``bc_ppo``)."""
    return record_demos(tmp_path_factory.mktemp("demos"), "flywheel/Track-v0", TRACK, episodes=1, seed=0).root


def run(template_id: str, workdir: Path, demos: Path, **ctx: Any) -> RunResult:
    config = parse_config(template_id, {**COMMON, **RUNS[template_id]})
    inputs = RunInputs([demos]) if template_id in ("bc", "bc_ppo") else RunInputs()
    return TEMPLATES[template_id].run(config, RunContext(workdir, inputs, **ctx))


def writer_threads() -> set[threading.Thread]:
    """TensorBoard event-file writer threads alive in this process."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    return {thread for thread in threading.enumerate() if isinstance(thread, _AsyncWriterThread)}


def assert_released(envs: Tracker, threads_before: set[threading.Thread]) -> None:
    assert writer_threads() == threads_before  # no TensorBoard writer thread survives the run
    assert all(file.closed for file in envs.event_files)  # every event file is closed
    assert envs.made and [env.kind for env in envs.made if not env.closed] == []  # every env was closed


@pytest.mark.parametrize("template_id", list(RUNS))
def test_a_run_that_succeeds_leaves_nothing_open(template_id: str, tmp_path: Path, envs: Tracker,
                                                 demos: Path) -> None:
    before = writer_threads()
    result = run(template_id, tmp_path / "run", demos)
    assert result.checkpoint.is_file()
    assert_released(envs, before)
    assert "final" in envs.kinds() and ("eval" in envs.kinds()) == ("eval_every" in RUNS[template_id])
    assert len(envs.event_files) == (template_id in ("ppo", "dqn", "sac", "bc_ppo"))


@pytest.mark.parametrize("template_id", list(CRASH_AT))
def test_a_run_whose_env_crashes_mid_training_leaves_nothing_open(template_id: str, tmp_path: Path, envs: Tracker,
                                                                  demos: Path) -> None:
    envs.crash_at = CRASH_AT[template_id]
    before = writer_threads()
    with pytest.raises(EnvCrashed):
        run(template_id, tmp_path / "run", demos)
    tensorboard = template_id != "dagger"  # DAgger fits by regression, without SB3's logger
    assert len(envs.open_at_crash) == tensorboard  # the event file was open when the crash came
    assert ("eval" in envs.kinds()) == tensorboard  # the callback had built its evaluation env
    assert_released(envs, before)
    assert not (tmp_path / "run" / "model.zip").exists()


def test_ppo_interrupted_or_given_a_checkpoint_that_does_not_fit_leaves_nothing_open(
        tmp_path: Path, envs: Tracker, demos: Path) -> None:
    def interrupt(step: int, metrics: dict[str, float]) -> None:
        if "eval/mean_return" in metrics:  # the first evaluation during training: the evaluation env exists
            raise KeyboardInterrupt

    before = writer_threads()
    with pytest.raises(KeyboardInterrupt):
        run("ppo", tmp_path / "interrupted", demos, report=interrupt)
    assert "eval" in envs.kinds() and len(envs.event_files) == 1
    assert_released(envs, before)

    first = run("ppo", tmp_path / "first", demos)
    bigger = parse_config("ppo", {**COMMON, **RUNS["ppo"], "net_arch": [32]})
    with pytest.raises(InvalidInput) as caught:
        TEMPLATES["ppo"].run(bigger, RunContext(tmp_path / "bigger", RunInputs(init_checkpoint=first.checkpoint)))
    assert caught.value.field == "inputs.init_checkpoint"
    assert_released(envs, before)


def test_bc_whose_report_hook_raises_mid_clone_leaves_nothing_open(tmp_path: Path, envs: Tracker,
                                                                    demos: Path) -> None:
    def report(step: int, metrics: dict[str, float]) -> None:
        if "losses/value_pretrain_loss" in metrics:  # the actor is fitted, the critic under way
            raise ConnectionError("the job system went away")

    with pytest.raises(ConnectionError):
        run("bc", tmp_path / "run", demos, report=report)
    assert len(envs.made) == 2  # the inputs' check env and the model's vec env copy
    assert_released(envs, set(writer_threads()))


class Closeable:
    """A resource that records the order of closes and may fail to close."""

    def __init__(self, name: str, closed: list[str], *, fails: bool = False) -> None:
        self.name, self.closed, self.fails = name, closed, fails

    def close(self) -> None:
        self.closed.append(self.name)
        if self.fails:
            raise OSError(f"{self.name} would not close")


def test_resources_close_in_reverse_order_and_never_hide_the_runs_exception() -> None:
    closed: list[str] = []
    with Resources() as keep:
        a = keep(Closeable("a", closed))
        early = keep(Closeable("early", closed))
        keep(Closeable("b", closed))
        keep.close(early)
    assert a.name == "a" and closed == ["early", "b", "a"]  # each once: the early one is not closed again

    closed.clear()
    with pytest.raises(ValueError, match="the run failed") as caught, Resources() as keep:
        keep(Closeable("a", closed))
        keep(Closeable("b", closed, fails=True))
        raise ValueError("the run failed")
    assert closed == ["b", "a"]  # the rest are closed after one fails
    assert caught.value.__notes__ == ["closing Closeable also failed: OSError('b would not close')"]

    closed.clear()
    with pytest.raises(OSError, match="b would not close") as caught, Resources() as keep:  # a run that returned
        keep(Closeable("a", closed, fails=True))
        keep(Closeable("b", closed, fails=True))
    assert closed == ["b", "a"]
    assert caught.value.__notes__ == ["closing Closeable also failed: OSError('a would not close')"]
