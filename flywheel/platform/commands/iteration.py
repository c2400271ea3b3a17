"""Iterations: numbered attempts inside an experiment (0, 1, 2…; an index is never reused).

Usage:
    flywheel iteration create exp_0123456789ab --notes "lr 3e-4" --config learning_rate=0.0003
    flywheel iteration create exp_0123456789ab --input-asset ast_0123456789ab   # inputs may come from any experiment
    flywheel iteration list exp_0123456789ab
    flywheel iteration show itr_0123456789ab
    flywheel iteration show exp_0123456789ab --index 2 --json
    flywheel iteration note itr_0123456789ab "converged after 40k steps" --append
"""

from __future__ import annotations

from typing import Annotated

import typer

from flywheel.cli_output import (
    ConfigOpt,
    DatasetOpt,
    ExperimentArg,
    IterationArg,
    JsonOpt,
    details,
    emit,
    first_line,
    next_steps,
    parse_key_values,
    say,
    show,
    table,
)
from flywheel.platform.assets import list_assets
from flywheel.platform.commands._identity import user_session
from flywheel.platform.iterations import create_iteration, get_iteration, list_iterations, note_iteration
from flywheel.platform.schemas import AssetPublic, IterationCreate, IterationNote, IterationPublic

app = typer.Typer(help="Iterations: numbered attempts inside an experiment.", no_args_is_help=True)

NotesOpt = Annotated[str | None, typer.Option("--notes", "-n", help="What this attempt tries.", show_default=False)]


@app.command("create")
def create(
    experiment: ExperimentArg,
    notes: NotesOpt = None,
    config: ConfigOpt = None,
    dataset: DatasetOpt = None,
    input_asset: Annotated[
        list[str] | None,
        typer.Option(
            "--input-asset", metavar="ASSET", help="An input asset id (any experiment). Repeat.", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the experiment's next iteration."""
    data = IterationCreate(
        notes=notes or "",
        config_overrides=parse_key_values(config, field="config_overrides"),
        input_dataset_ids=dataset or [],
        input_asset_ids=input_asset or [],
    )
    with user_session() as (session, user):
        public = IterationPublic.of(create_iteration(session, user, experiment, data))

    def render() -> None:
        say(f"Created iteration #{public.index} ({public.id}) of {public.experiment_id}.")
        next_steps(f"flywheel asset upload {public.experiment_id} <file> --iteration {public.id}")

    emit(public, as_json, render)


@app.command("list")
def list_(experiment: ExperimentArg, as_json: JsonOpt = False) -> None:
    """List an experiment's iterations by index."""
    with user_session() as (session, user):
        iterations = [IterationPublic.of(i) for i in list_iterations(session, user, experiment)]

    def render() -> None:
        if not iterations:
            say(f"Experiment {experiment} has no iterations yet.")
            next_steps(f"flywheel iteration create {experiment}")
            return
        columns = ["#", "id", "status", "assets", "notes", "created"]
        rows = [
            [f"#{i.index}", i.id, i.status, len(i.output_asset_ids), first_line(i.notes), i.created_at]
            for i in iterations
        ]
        if any(i.config_overrides for i in iterations):  # shown once templates give them meaning
            columns.insert(4, "overrides")
            for row, i in zip(rows, iterations, strict=True):
                row.insert(4, i.config_overrides)
        show(table(None, columns, rows))

    emit(iterations, as_json, render)


@app.command("show")
def show_(
    ident: Annotated[
        str, typer.Argument(metavar="ITERATION|EXPERIMENT", help="An iteration id, or an experiment id with --index.")
    ],
    index: Annotated[
        int | None, typer.Option("--index", help="The iteration's index in the experiment.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an iteration: notes, config overrides, inputs and outputs."""
    with user_session() as (session, user):
        public = IterationPublic.of(get_iteration(session, user, ident, index))
        outputs = [AssetPublic.model_validate(a) for a in list_assets(session, user, iteration_id=public.id)]

    def render() -> None:
        show(
            details(
                f"iteration #{public.index}",
                [
                    ("id", public.id),
                    ("experiment", public.experiment_id),
                    ("status", public.status),
                    ("job", public.job_id),
                    ("overrides", public.config_overrides),
                    ("input datasets", public.input_dataset_ids),
                    ("input assets", public.input_asset_ids),
                    ("output assets", [f"{a.name} ({a.id})" for a in outputs]),
                    ("output evals", public.output_eval_ids),
                    ("created", public.created_at),
                    ("notes", public.notes or None),
                ],
            )
        )

    emit(public, as_json, render)


@app.command("note")
def note(
    iteration: IterationArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The notes.")],
    append: Annotated[bool, typer.Option("--append", "-a", help="Add to the notes instead of replacing them.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace (or with --append extend) an iteration's notes."""
    with user_session() as (session, user):
        public = IterationPublic.of(note_iteration(session, user, iteration, IterationNote(notes=text, append=append)))
    emit(public, as_json, lambda: say(f"Notes of iteration #{public.index} ({public.id}) saved."))
