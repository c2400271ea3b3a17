"""`flywheel train`, `flywheel eval` and `flywheel template`: run recipes and measure policies.

Usage:
    flywheel template list
    flywheel template show ppo
    flywheel train --template ppo --project drive --experiment baseline --set total_timesteps=20000
    flywheel train --queue --template ppo --project drive --experiment baseline   # through the job queue
    flywheel train --template bc --project look-at --experiment bc --dataset demos --set env_id=flywheel/ReachyLookAt-v0
    flywheel eval --model .flywheel/runs/itr_0123456789ab/model.onnx --env flywheel/Track-v0 --track mountain \\
        --train-track generated-roads --episodes 10
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from flywheel.cli_output import (
    JsonOpt,
    console,
    details,
    emit,
    err_console,
    next_steps,
    parse_key_values,
    say,
    show,
    table,
)
from flywheel.errors import InvalidInput
from flywheel.platform.commands._identity import user_session

app = typer.Typer(help="Templates: versioned training recipes with a config schema.", no_args_is_help=True)

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE", help="A config value (JSON when it parses). Repeat.",
                 show_default=False),
]


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """The templates this installation can run."""
    from flywheel.training.templates import TEMPLATES

    rows = [{"id": t.id, "version": t.version, "description": t.description} for t in TEMPLATES.values()]
    emit(rows, as_json, lambda: show(table("Templates", ["id", "version", "description"],
                                           [[r["id"], r["version"], r["description"]] for r in rows])))


@app.command("show")
def show_(template: Annotated[str, typer.Argument(help="Template id.")], as_json: JsonOpt = False) -> None:
    """A template's config fields, defaults and allowed ranges."""
    from flywheel.training.templates import get_template_impl

    impl = get_template_impl(template)
    schema = impl.config_model.model_json_schema()
    defaults = impl.config_model().model_dump(mode="json")
    fields = schema.get("properties", {})

    def render() -> None:
        say(f"{impl.id} v{impl.version}: {impl.description}")
        show(table("Config", ["key", "default", "description"],
                   [[key, defaults.get(key), spec.get("description", "")] for key, spec in fields.items()]))

    emit({"id": impl.id, "version": impl.version, "description": impl.description, "config_schema": schema,
          "default_config": defaults}, as_json, render)


def train(
    template: Annotated[str, typer.Option("--template", "-t", help="Template id (see `flywheel template list`).")],
    project: Annotated[str, typer.Option("--project", "-p", help="Project id or name.")],
    experiment: Annotated[str, typer.Option("--experiment", "-e",
                                            help="Experiment id or name; created when it does not exist.")],
    set_: SetOpt = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Input dataset id or name. Repeat.",
                                                      show_default=False)] = None,
    init_asset: Annotated[str | None, typer.Option("--init-asset", help="Start from this checkpoint asset.",
                                                   show_default=False)] = None,
    notes: Annotated[str, typer.Option("--notes", "-n", help="What this attempt tries.")] = "",
    queue: Annotated[bool, typer.Option("--queue", help="Go through the job queue even if no `flywheel worker` "
                                        "runs (then a scheduler runs in this command until the job ends).")] = False,
    local: Annotated[bool, typer.Option("--local", help="Train in this process, without the queue.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a template as the experiment's next iteration and store its outputs.

    When a `flywheel worker` is running (or with --queue) this submits a job and follows its log until it
    ends (status, cost and log are kept on the job); otherwise, or with --local, it trains in this process.
    """
    from flywheel.training.runner import TrainRequest
    from flywheel.training.runner import train as run_training

    if queue and local:
        raise InvalidInput("--queue and --local exclude each other", field="--queue/--local")
    request = TrainRequest(template=template, project=project, experiment=experiment,
                           overrides=parse_key_values(set_, field="config"), dataset_ids=dataset or [],
                           init_asset_id=init_asset, notes=notes)
    if not local:
        from flywheel.jobs.scheduler import scheduler_running

        if queue or scheduler_running():
            from flywheel.jobs.commands import submit_and_follow

            raise typer.Exit(submit_and_follow(request.model_dump(), as_json=as_json))
    err = err_console()
    started = time.monotonic()

    def report(step: int, metrics: dict[str, float]) -> None:
        shown = {k: v for k, v in metrics.items() if k.startswith(("charts/ep_rew_mean", "eval/mean_return",
                                                                    "losses/bc_loss"))}
        if shown and not as_json:
            numbers = "  ".join(f"{k.split('/', 1)[1]} {v:.3g}" for k, v in shown.items())
            err.print(Text(f"  step {step:>8}  {numbers}  ({time.monotonic() - started:.0f} s)"))

    with user_session() as (session, user):
        outcome = run_training(session, user, request, report=report)
        summary = outcome.result.evaluation
        data: dict[str, Any] = {
            "iteration_id": outcome.iteration.id, "experiment_id": outcome.iteration.experiment_id,
            "index": outcome.iteration.index, "template": template, "config": outcome.config.model_dump(mode="json"),
            "env_steps": outcome.result.env_steps, "env_episodes": outcome.result.env_episodes,
            "evaluation": summary.to_dict(), "assets": outcome.asset_ids, "eval_dataset_id": outcome.eval_dataset_id,
            "seconds": round(time.monotonic() - started, 2),
        }

    def render() -> None:
        show(details(f"Trained {template}: iteration #{data['index']} ({data['iteration_id']})", [
            ("env", outcome.config.env_id),
            ("mean return", f"{summary.mean_return:.2f} ± {summary.std_return:.2f} ({len(summary.returns)} episodes)"),
            ("success rate", f"{summary.success_rate:.0%}"),
            ("env steps / episodes", f"{data['env_steps']} / {data['env_episodes']}"),
            ("time", f"{data['seconds']:.1f} s"),
            ("assets", ", ".join(f"{name} {ident}" for name, ident in data["assets"].items())),
            ("eval dataset", data["eval_dataset_id"] or "-"),
        ]))
        next_steps(f"flywheel iteration show {data['iteration_id']}",
                   f"flywheel eval --model {data['assets'].get('model.onnx', '<model>')} --env {outcome.config.env_id}")

    emit(data, as_json, render)


def evaluate_model(
    model: Annotated[str, typer.Option("--model", "-m", help="model.zip, model.onnx, or an asset id of either.")],
    env: Annotated[str, typer.Option("--env", help="Env id, e.g. flywheel/Track-v0.")],
    track: Annotated[str | None, typer.Option("--track", help="Track to evaluate on (car tasks).",
                                              show_default=False)] = None,
    train_track: Annotated[str | None, typer.Option(
        "--train-track", help="The track it was trained on: also evaluated, for the generalisation gap.",
        show_default=False)] = None,
    episodes: Annotated[int, typer.Option("--episodes", "-n", min=1, max=10_000, help="Episodes.")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Episode i uses seed + i.")] = 1_000_000,
    env_kwarg: Annotated[list[str] | None, typer.Option("--env-kwarg", metavar="KEY=VALUE",
                                                        help="Env keyword argument. Repeat.",
                                                        show_default=False)] = None,
    discretize: Annotated[str | None, typer.Option(help="STEERxTHROTTLE for a discrete-action (DQN) model.",
                                                   show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a policy: per-episode returns, mean ± std, success rate, task metrics, generalisation gap."""
    from flywheel.training.evaluation import evaluate, generalisation_gap
    kwargs = parse_key_values(env_kwarg, field="env_kwargs")
    wrappers = {"discretize": _parse_discretize(discretize)} if discretize else {}
    policy = _load(model)
    summary = evaluate(policy, env, {**kwargs, **({"track": track} if track else {})}, episodes=episodes,
                       seed=seed, record=False, **wrappers)
    data: dict[str, Any] = {"env": env, "track": track, **summary.to_dict()}
    if train_track:
        on_train = evaluate(policy, env, {**kwargs, "track": train_track}, episodes=episodes, seed=seed,
                            record=False, **wrappers)
        data["train_track"] = {"track": train_track, **on_train.to_dict()}
        data["generalisation_gap"] = generalisation_gap(on_train, summary)

    def render() -> None:
        out = console()
        for i, value in enumerate(summary.returns):
            out.print(Text(f"  episode {i:>3}: return {value:10.2f}  length {summary.lengths[i]}"))
        rows = [("mean return", f"{summary.mean_return:.2f} ± {summary.std_return:.2f}"),
                ("success rate", f"{summary.success_rate:.0%}"),
                ("mean length", f"{sum(summary.lengths) / len(summary.lengths):.1f}")]
        rows += [(key, f"{value:.4g}") for key, value in summary.task_metrics.items()]
        if "generalisation_gap" in data:
            rows.append((f"return on {train_track} (train)", f"{data['train_track']['mean_return']:.2f}"))
            rows.append(("generalisation gap", f"{data['generalisation_gap']:.2f}"))
        show(details(f"{env}{f' on {track}' if track else ''}: {episodes} episodes", rows))

    emit(data, as_json, render)


def _load(model: str) -> Any:
    """The policy behind a path or an asset id."""
    from flywheel.training.policies import load_policy

    if Path(model).is_file():
        return load_policy(Path(model))
    if model.startswith("ast_"):
        from flywheel.blobs import get_blob_store
        from flywheel.platform import access

        with user_session() as (session, user):
            asset = access.asset(session, user, model)
            path, fmt = get_blob_store().path(asset.blob_hash), Path(asset.name).suffix.lstrip(".")
        return load_policy(path, fmt=fmt or None)
    raise InvalidInput(f"no such file or asset: {model}", field="model",
                       allowed="a model.zip / model.onnx path or an asset id (ast_…)")


def _parse_discretize(value: str) -> tuple[int, int]:
    try:
        steer, throttle = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise InvalidInput(f"got {value!r}", field="discretize", allowed="STEERxTHROTTLE, e.g. 5x3") from None
    return steer, throttle
