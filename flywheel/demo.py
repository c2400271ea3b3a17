"""The demo: Flywheel's main job, end to end, in its own home (`./.flywheel-demo`, wiped at the start).

It is a list of small named steps (`STEPS`), each a function of the shared `Demo` state that calls the same
service functions as the CLI and the API. Later issues add steps until the demo runs the whole loop:
record → datasets → train → search → verify → ship → collect → again.

Usage:
    make demo                                   # creates .venv, installs, runs `flywheel demo`
    flywheel demo --home /tmp/flywheel-demo

Example:
    >>> demo = run_demo(Path(tempfile.mkdtemp()) / "demo")  # doctest: +SKIP
    >>> demo.ids["fork"]  # doctest: +SKIP
    'exp_…'
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from flywheel.autoresearch.demo_steps import AUTORESEARCH_STEPS
from flywheel.blobs import get_blob_store
from flywheel.cli_output import console as stdout_console
from flywheel.datasets.demo_steps import DATASET_STEPS
from flywheel.errors import Conflict
from flywheel.jobs.demo_steps import JOB_STEPS
from flywheel.platform.assets import blob_reference_count, list_assets
from flywheel.platform.commands._identity import save_api_key, user_session
from flywheel.platform.commands.lineage import render_lineage
from flywheel.platform.commands.tree import render_tree
from flywheel.platform.experiments import create_experiment, fork_experiment, tree
from flywheel.platform.lineage import lineage
from flywheel.platform.projects import create_project
from flywheel.platform.schemas import (
    ExperimentCreate,
    ExperimentFork,
    ProjectCreate,
    UserCreate,
)
from flywheel.platform.users import create_user
from flywheel.safety.verify.demo_steps import VERIFY_STEPS
from flywheel.store.engine import dispose_engines, session_scope
from flywheel.training.demo_steps import TRAINING_STEPS

DEFAULT_HOME = Path(".flywheel-demo")
MARKER = ".flywheel-demo"  # a home holding this file was made by the demo and may be wiped
PROJECT = "drive"
DESCRIPTION = """Drive the car around the track, fast and on the road.

*Task*: `flywheel/Track-v0` (kinematic bicycle car). *Observation*: speed, heading error, lateral offset,
look-ahead points. *Action*: steer and throttle. *Reward*: metres of progress along the centre line."""

#: A small but real PPO run on the track (a few seconds on one core); attempts differ in learning rate.
TINY_PPO: dict[str, Any] = {"total_timesteps": 4096, "n_envs": 1, "n_steps": 256, "batch_size": 64, "n_epochs": 2,
                            "net_arch": [32], "eval_episodes": 2, "env_kwargs": {"max_steps": 200}}
ROOT_ATTEMPTS: list[dict[str, Any]] = [{"learning_rate": 3e-4}, {"learning_rate": 1e-3}, {"learning_rate": 3e-3}]


@dataclass
class Demo:
    """What the steps share: where the demo lives, how it prints, and the ids of what it made, by role."""

    home: Path
    out: Console
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        """Where the demo writes the files it uploads (as a training job would)."""
        return self.home / "workspace"

    def note(self, message: str) -> None:
        """One indented line under the current step."""
        self.out.print(Text("   " + message), soft_wrap=True)


Step = Callable[[Demo], None]


# --- the steps ------------------------------------------------------------------------------------------


def start_fresh(demo: Demo) -> None:
    """Start from an empty demo home."""
    wipe_demo_home(demo.home)
    demo.workspace.mkdir(parents=True)
    demo.note(f"home: {demo.home} (database, blobs and credentials live here)")


def create_demo_user(demo: Demo) -> None:
    """Create a user and save its API key as the CLI's identity."""
    with session_scope() as session:
        user, api_key = create_user(session, UserCreate(name="demo"))
        demo.ids["user"] = user.id
        path = save_api_key(api_key)
    demo.note(f"user demo ({demo.ids['user']}), key saved to {_short(path)} (mode 0600)")


def create_demo_project(demo: Demo) -> None:
    """Create the project "drive"."""
    with user_session() as (session, user):
        project = create_project(session, user, ProjectCreate(name=PROJECT, description=DESCRIPTION))
        demo.ids["project"] = project.id
    demo.note(f"project {PROJECT} ({demo.ids['project']}): {DESCRIPTION.splitlines()[0]}")


def create_root_experiment(demo: Demo) -> None:
    """Create the root experiment "baseline": three real PPO runs that differ in learning rate."""
    returns = {}
    for index, overrides in enumerate(ROOT_ATTEMPTS):
        outcome = _train(demo, "baseline", {**TINY_PPO, **overrides}, notes=f"lr {overrides['learning_rate']:g}")
        demo.ids["root"] = outcome.iteration.experiment_id
        demo.ids[f"root#{index}"] = outcome.iteration.id
        returns[index] = outcome.result.evaluation.mean_return
        demo.note(f"#{index}  lr {overrides['learning_rate']:g}  mean return {returns[index]:7.2f}  "
                  f"({len(outcome.asset_ids)} outputs: {', '.join(outcome.asset_ids)})")
    best = max(returns, key=lambda i: returns[i])
    demo.ids["best"] = str(best)
    demo.note(f"best attempt: #{best} (mean return {returns[best]:.2f})")


def create_child_experiment(demo: Demo) -> None:
    """Create a child experiment "wider-net" under the root, with one real run (2×64 units instead of 32)."""
    with user_session() as (session, user):
        child = create_experiment(session, user, ExperimentCreate(
            project_id=PROJECT, name="wider-net", parent_id=demo.ids["root"], template_id="ppo",
            description="Same recipe, two hidden layers of 64 units instead of one of 32."))
        demo.ids["child"] = child.id
    outcome = _train(demo, "wider-net", {**TINY_PPO, "net_arch": [64, 64]}, notes="2x64 hidden units")
    demo.ids["child#0"] = outcome.iteration.id
    demo.note(f"wider-net ({demo.ids['child']}) under baseline: iteration #0, mean return "
              f"{outcome.result.evaluation.mean_return:.2f}")


def fork_root(demo: Demo) -> None:
    """Fork the root from its best attempt and train on from its checkpoint."""
    best = int(demo.ids["best"])
    with user_session() as (session, user):
        fork = fork_experiment(session, user, demo.ids["root"],
                               ExperimentFork(name="longer-training", iteration_index=best))
        demo.ids["fork"] = fork.id
        linked = list_assets(session, user, experiment_id=fork.id)
        checkpoint = next(a for a in linked if a.name == "model.zip")
        demo.ids["fork checkpoint"] = checkpoint.id
        demo.ids["root checkpoint"] = checkpoint.linked_from_id or ""
    demo.note(f"longer-training ({demo.ids['fork']}) forked from baseline @ #{best}")
    demo.note(f"{len(linked)} assets linked by reference: {', '.join(a.name for a in linked)}")
    outcome = _train(demo, "longer-training", {**TINY_PPO, "total_timesteps": 8192},
                     notes=f"resume from baseline #{best}", init_asset_id=checkpoint.id)
    demo.ids["fork#0"] = outcome.iteration.id
    result = outcome.result.evaluation
    demo.note(f"iteration #0 started from the linked model.zip: mean return {result.mean_return:.2f}")


def show_tree(demo: Demo) -> None:
    """Draw the experiment trees (`flywheel tree drive`)."""
    with user_session() as (session, user):
        roots = tree(session, user, PROJECT)
    demo.out.print(render_tree(PROJECT, demo.ids["project"], roots))


def prove_sharing(demo: Demo) -> None:
    """Prove the fork shares bytes: the same blob hash, one copy on disk."""
    with user_session() as (session, user):
        by_id = {a.id: a for a in list_assets(session, user, experiment_id=demo.ids["fork"])}
        by_id.update({a.id: a for a in list_assets(session, user, experiment_id=demo.ids["root"])})
        original, forked = by_id[demo.ids["root checkpoint"]], by_id[demo.ids["fork checkpoint"]]
        references = blob_reference_count(session, forked.blob_hash)
    copies = files_holding(forked.blob_hash)
    demo.ids["blob"] = forked.blob_hash
    same = "same" if original.blob_hash == forked.blob_hash else "DIFFERENT"
    demo.note(f"baseline #{demo.ids['best']}      model.zip  {original.id}")
    demo.note(f"longer-training  model.zip  {forked.id}")
    demo.note(f"{same} sha256: {forked.blob_hash}")
    demo.note(f"asset rows pointing at these bytes: {references}; files on disk holding them: {len(copies)}")
    for path in copies:
        demo.note(f"  {_short(path)}")


def show_lineage(demo: Demo) -> None:
    """Print where the best checkpoint came from (`flywheel lineage <asset>`)."""
    with user_session() as (session, user):
        chain = lineage(session, user, demo.ids["root checkpoint"])
    demo.out.print(render_lineage(chain))


def what_next(demo: Demo) -> None:
    """Explore what the demo made (after `source .venv/bin/activate`)."""
    env = f"FLYWHEEL_HOME={demo.home}"
    for command in (
        f"{env} flywheel tree {PROJECT}",
        f"{env} flywheel experiment show {demo.ids['fork']}",
        f"{env} flywheel asset list {demo.ids['fork']}",
        f"{env} flywheel lineage {demo.ids['root checkpoint']}",
        f"{env} flywheel iteration list {demo.ids['root']} --json",
        f"{env} flywheel serve",
        f'curl -H "Authorization: Bearer $(cat {demo.home}/credentials)" http://127.0.0.1:8000/api/v1/projects',
    ):
        demo.out.print(Text("   " + command, style="cyan"), soft_wrap=True)


#: The demo, in order. Later issues insert their steps (record, train, search, verify, ship…) here.
STEPS: list[Step] = [
    start_fresh,
    create_demo_user,
    create_demo_project,
    create_root_experiment,
    create_child_experiment,
    fork_root,
    show_tree,
    prove_sharing,
    show_lineage,
    *DATASET_STEPS,
    *TRAINING_STEPS,
    *JOB_STEPS,
    *AUTORESEARCH_STEPS,
    *VERIFY_STEPS,
    what_next,
]


def run_demo(home: Path = DEFAULT_HOME, *, out: Console | None = None, steps: list[Step] | None = None) -> Demo:
    """Run the demo's steps in `home` (wiped first) and return what they made.

    The demo always uses SQLite and blobs inside `home`, whatever FLYWHEEL_* says, so it is repeatable and
    never touches your own `./.flywheel`; the environment is restored afterwards.
    """
    demo = Demo(home=home, out=out or stdout_console())
    with demo_environment(home):
        for number, step in enumerate(steps or STEPS, start=1):
            title = (step.__doc__ or step.__name__).strip().splitlines()[0]
            demo.out.print(Text(f"{number}. {title}", style="bold"))
            step(demo)
    return demo


# --- helpers ---------------------------------------------------------------------------------------------


@contextmanager
def demo_environment(home: Path) -> Iterator[None]:
    """Point Flywheel's settings at `home` (SQLite, blobs, credentials) for the duration, then restore them."""
    names = ("FLYWHEEL_HOME", "FLYWHEEL_DATABASE_URL", "FLYWHEEL_BLOB_DIR", "FLYWHEEL_DATASET_DIR", "FLYWHEEL_API_KEY")
    saved = {name: os.environ.get(name) for name in names}
    dispose_engines()
    try:
        for name in names:
            os.environ.pop(name, None)
        os.environ["FLYWHEEL_HOME"] = str(home)
        os.environ["FLYWHEEL_DATABASE_URL"] = f"sqlite:///{home.absolute()}/flywheel.db"
        yield
    finally:
        dispose_engines()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wipe_demo_home(home: Path) -> None:
    """Empty `home` if the demo made it (or it is empty); refuse any other folder."""
    if home.exists():
        if not home.is_dir() or (any(home.iterdir()) and not (home / MARKER).is_file()):
            raise Conflict(
                f"{home} exists and was not made by the demo (no {MARKER} file in it); refusing to wipe it",
                hint="Pass --home with a new folder, or remove that one yourself.",
            )
        dispose_engines()
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("Made by `flywheel demo`; wiped and rebuilt on every run.\n", encoding="utf-8")


def files_holding(digest: str) -> list[Path]:
    """Every file in the blob store whose bytes hash to `digest` (the proof that forks do not copy)."""
    root = get_blob_store().root
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            found.append(path)
    return found


def _short(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (shorter lines), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _train(demo: Demo, experiment: str, overrides: dict[str, Any], *, notes: str,
           init_asset_id: str | None = None) -> Any:
    """Train the `ppo` template in this process as the experiment's next iteration (what `flywheel train
    --local` does) and return the outcome."""
    from flywheel.training.runner import TrainRequest, train

    with user_session() as (session, user):
        return train(session, user, TrainRequest(template="ppo", project=PROJECT, experiment=experiment,
                                                 overrides=overrides, notes=notes, init_asset_id=init_asset_id))
