"""`flywheel autoresearch`: search a template's hyperparameters with GP + UCB, one training job per trial.

Usage:
    flywheel autoresearch --project drive --template dqn --space space.yaml --trials 100 \\
        --min-timesteps 5000 --max-timesteps 20000 --push-every 10 --remote git@github.com:me/sweeps.git
    flywheel autoresearch --project drive --template ppo --space space.yaml --workers 2 --runner ray
    flywheel autoresearch ... --base-sweep grid.jsonl --prior old-search/results.jsonl   # learn from these
    flywheel project alias drive champion                                               # the crowned iteration

Run the same command again on the same --results folder to resume after a crash or Ctrl+C: finished
trials are not run again. ``--objective module:function`` scores trials with a Python function instead of
training (tests, custom objectives); with ``--sleep-seconds`` each such trial is also a ``sleep`` job.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from flywheel.cli_output import ConfigOpt, JsonOpt, details, emit, err_console, next_steps, parse_key_values, show
from flywheel.errors import InvalidInput
from flywheel.platform.commands._identity import user_session
from flywheel.settings import get_settings


def _objective(spec: str) -> Any:
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise InvalidInput(f"{spec!r} is not MODULE:FUNCTION", field="--objective", allowed="e.g. mypkg.obj:score")
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot load {spec}: {exc}", field="--objective") from None
    if not callable(function):
        raise InvalidInput(f"{spec} is not callable", field="--objective")
    return function


def check_space_fits_template(space: Any, template: str) -> None:
    """Every parameter of the space must be a config field of the template (named in the error otherwise)."""
    from flywheel.training.templates import get_template_impl

    fields = get_template_impl(template).config_model.model_fields
    for name in space.names:
        if name not in fields:
            raise InvalidInput(f"the space's parameter {name!r} is not a config field of template {template}",
                               field=name, allowed=sorted(fields))


def autoresearch(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name or id.")],
    space_file: Annotated[Path, typer.Option("--space", help="Search space YAML (name: {type, low, high, log} or "
                                              "{type: categorical, choices}).", exists=True, dir_okay=False)],
    template: Annotated[str | None, typer.Option("--template", "-t", help="Template to train (ppo, dqn, ...).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Trial budget (trials already in --results count).")] = 100,
    explore: Annotated[float, typer.Option(min=0.0, help="κ of UCB = μ + κ·σ (higher explores more).")] = 1.0,
    min_timesteps: Annotated[int, typer.Option(min=1, help="Lower bound of total_timesteps.")] = 5000,
    max_timesteps: Annotated[int, typer.Option(min=1, help="Upper bound (and the default) of total_timesteps.")]
    = 20000,
    push_every: Annotated[int, typer.Option(min=0, help="Commit and push the results every N trials (0: never).")]
    = 0,
    remote: Annotated[str | None, typer.Option(help="Git remote to push the results to (URL or path).")] = None,
    results: Annotated[Path | None, typer.Option(help="Results folder (default $FLYWHEEL_HOME/autoresearch/"
                                                 "<project>-<template>).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Trials in flight at once.")] = 1,
    timeout: Annotated[float, typer.Option(min=1.0, help="Per-trial timeout in seconds (then: cancelled, "
                                           "recorded timeout).")] = 360.0,
    cooldown: Annotated[float, typer.Option(min=0.0, help="Seconds between trials.")] = 2.0,
    base_sweep: Annotated[list[Path] | None, typer.Option("--base-sweep", help="A base sweep JSONL to learn from "
                                                          "(repeatable).", exists=True, dir_okay=False)] = None,
    prior: Annotated[list[Path] | None, typer.Option("--prior", help="An earlier autoresearch results.jsonl to "
                                                     "learn from (repeatable).", exists=True, dir_okay=False)] = None,
    runner: Annotated[str, typer.Option(help="Where trials run: local or ray.")] = "local",
    experiment: Annotated[str | None, typer.Option(help="Experiment collecting the trials' iterations "
                                                   "(default autoresearch-<template>).")] = None,
    eval_episodes: Annotated[int, typer.Option(min=1, help="Episodes of each trial's final evaluation.")] = 10,
    champion_episodes: Annotated[int, typer.Option(min=1, help="Episodes of a champion candidate's "
                                                   "re-evaluation (other seeds).")] = 30,
    set_: ConfigOpt = None,
    seed: Annotated[int, typer.Option(min=0, help="Seeds the controller.")] = 0,
    patience: Annotated[int | None, typer.Option(min=1, help="Stop after N trials without improvement.")] = None,
    objective: Annotated[str | None, typer.Option(help="MODULE:FUNCTION scoring params in process instead of "
                                                  "training (tests, custom objectives).")] = None,
    sleep_seconds: Annotated[float | None, typer.Option(help="With --objective: run each trial as a sleep job of "
                                                        "this many seconds.", hidden=True)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search hyperparameters: each trial trains through the job system; the best is re-evaluated and crowned."""
    from flywheel.autoresearch.loop import AutoresearchLoop, LoopSettings
    from flywheel.autoresearch.space import SearchSpace
    from flywheel.autoresearch.store import RunMirror
    from flywheel.autoresearch.trials import FunctionTrials, JobTrials, SleepJobTrials, timesteps_bounds_check

    if objective is None and template is None:
        raise InvalidInput("--template is required (or --objective for a function)", field="--template",
                           hint="`flywheel template list` shows the templates.")
    if min_timesteps > max_timesteps:
        raise InvalidInput(f"--min-timesteps {min_timesteps} exceeds --max-timesteps {max_timesteps}",
                           field="--min-timesteps")
    if runner not in ("local", "ray"):
        raise InvalidInput(f"unknown runner {runner!r}", field="--runner", allowed=["local", "ray"])
    space = SearchSpace.from_yaml(space_file)
    label = template or f"objective-{objective}"
    if template is not None and objective is None:
        check_space_fits_template(space, template)
        timesteps_bounds_check(space.params, min_timesteps, max_timesteps)
    overrides = parse_key_values(set_, field="--set")
    if template is not None:
        overrides.setdefault("eval_episodes", eval_episodes)
    settings = LoopSettings(trials=trials, workers=workers, timeout_s=timeout, cooldown_s=cooldown, explore=explore,
                            seed=seed, patience=patience, push_every=push_every)
    with user_session() as (session, user):
        from flywheel.platform import access

        found = access.project(session, user, project)
        user_id, project_id, project_name = user.id, found.id, found.name
    folder = (results or get_settings().home / "autoresearch" / f"{project_name}-{label.replace(':', '-')}").absolute()
    experiment = experiment or f"autoresearch-{label.replace(':', '-')}"[:200]
    jobs = {"user_id": user_id, "project": project_id, "experiment": experiment, "timeout_s": timeout,
            "runner": runner}
    trial_runner: Any
    if objective is not None and sleep_seconds is not None:
        trial_runner = SleepJobTrials(_objective(objective), seconds=sleep_seconds, **jobs)
    elif objective is not None:
        trial_runner = FunctionTrials(_objective(objective))
    else:
        trial_runner = JobTrials(template=template, base=overrides, champion_episodes=champion_episodes,
                                 timesteps=(min_timesteps, max_timesteps), **jobs)
    mirror = RunMirror.open(user_id=user_id, project=project_id, results_dir=folder, template=label,
                            experiment=experiment, space=space.to_dict(),
                            settings={**settings.model_dump(), "overrides": overrides, "runner": runner})
    prior_db = folder / "prior_db.jsonl"
    learned = mirror.write_prior(prior_db, label)
    err = err_console()
    err.print(Text(f"autoresearch {label} on {project_name}: {trials} trials, results in {folder}"
                   f"{f'; {learned} trials of earlier searches as prior' if learned else ''}"))
    loop = AutoresearchLoop(space=space, runner=trial_runner, results_dir=folder, settings=settings,
                            prior=[*(base_sweep or []), *(prior or []), prior_db], mirror=mirror, remote=remote,
                            name=f"autoresearch:{mirror.run_id}",
                            out=lambda line: err.print(Text(line), soft_wrap=True))
    reason = loop.run()
    champ = loop.keeper.champion
    data = {"run_id": mirror.run_id, "results": str(folder), "stop_reason": reason,
            "trials": loop.ctl.n_completed if loop.ctl else 0,
            "champion": champ.model_dump() if champ else None,
            "champion_iteration_id": mirror.iteration_of(champ.trial) if champ else None}

    def render() -> None:
        best = loop.ctl.best if loop.ctl else None
        show(details(f"Autoresearch {label} on {project_name}: {reason}", [
            ("trials", data["trials"]),
            ("best trial", "-" if best is None else f"{best.trial}: {best.mean_reward:.4g} {best.params}"),
            ("champion", loop.keeper.summary()),
            ("champion iteration", data["champion_iteration_id"] or "-"),
            ("results", str(folder / "results.jsonl")),
            ("plots", str(folder / "plots" / "index.html")),
        ]))
        next_steps(f"flywheel project alias {project_name} champion",
                   f"flywheel autoresearch ... --results {folder}   # run again to resume or extend")

    emit(data, as_json, render)
