"""Experiments: approaches inside a project, arranged in trees, forked from a chosen iteration.

Usage:
    flywheel experiment create look-at baseline --description "PPO, default config"
    flywheel experiment create look-at wider-net --parent exp_0123456789ab
    flywheel experiment list look-at
    flywheel experiment show exp_0123456789ab --json
    flywheel experiment edit exp_0123456789ab --name baseline-v2 --parent exp_ba9876543210   # or --root
    flywheel experiment fork exp_0123456789ab longer-horizon --from-iteration 1
    flywheel experiment delete exp_0123456789ab --yes       # children move up; --cascade deletes them too
    flywheel experiment tree look-at
    flywheel experiment link-dataset exp_0123456789ab head-demos
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markdown import Markdown

from flywheel.cli_output import (
    ConfigOpt,
    DatasetArg,
    DatasetOpt,
    DescriptionOpt,
    ExperimentArg,
    JsonOpt,
    NameArg,
    ProjectArg,
    YesOpt,
    details,
    emit,
    next_steps,
    parse_key_values,
    say,
    show,
    table,
)
from flywheel.errors import InvalidInput
from flywheel.platform import access
from flywheel.platform.assets import list_assets
from flywheel.platform.commands._identity import user_session
from flywheel.platform.commands.tree import tree
from flywheel.platform.experiments import (
    create_experiment,
    delete_experiment,
    fork_experiment,
    link_dataset,
    list_experiments,
    unlink_dataset,
    update_experiment,
)
from flywheel.platform.iterations import list_iterations
from flywheel.platform.schemas import ExperimentCreate, ExperimentFork, ExperimentPublic, ExperimentUpdate

app = typer.Typer(help="Experiments: approaches inside a project, in trees, with forks.", no_args_is_help=True)
app.command("tree")(tree)

ParentOpt = Annotated[
    str | None, typer.Option("--parent", metavar="EXPERIMENT", help="The parent experiment id.", show_default=False)
]
TemplateOpt = Annotated[
    str | None, typer.Option("--template", metavar="TEMPLATE", help="A registered template id.", show_default=False)
]
GitRepoOpt = Annotated[str | None, typer.Option("--git-repo", help="The code's git repository.", show_default=False)]
GitCommitOpt = Annotated[str | None, typer.Option("--git-commit", help="The code's git commit.", show_default=False)]


@app.command("create")
def create(
    project: ProjectArg,
    name: NameArg,
    parent: ParentOpt = None,
    description: DescriptionOpt = None,
    template: TemplateOpt = None,
    config: ConfigOpt = None,
    git_repo: GitRepoOpt = None,
    git_commit: GitCommitOpt = None,
    dataset: DatasetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an experiment: a root of a tree, or with --parent a child."""
    data = ExperimentCreate(
        project_id=project,
        name=name,
        parent_id=parent,
        description=description or "",
        template_id=template,
        template_config=parse_key_values(config, field="template_config"),
        git_repo=git_repo or "",
        git_commit=git_commit or "",
        dataset_ids=dataset or [],
    )
    with user_session() as (session, user):
        public = ExperimentPublic.of(create_experiment(session, user, data))

    def render() -> None:
        where = f"under {public.parent_id}" if public.parent_id else "as a root"
        say(f"Created experiment {public.name} ({public.id}) {where}.")
        next_steps(f"flywheel iteration create {public.id} --notes '<what this attempt tries>'")

    emit(public, as_json, render)


@app.command("list")
def list_(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """List a project's experiments, oldest first."""
    with user_session() as (session, user):
        experiments = [ExperimentPublic.of(e) for e in list_experiments(session, user, project)]

    def render() -> None:
        if not experiments:
            say(f"Project {project} has no experiments yet.")
            next_steps(f"flywheel experiment create {project} <name>")
            return
        names = {e.id: e.name for e in experiments}
        rows = [
            (
                e.id,
                e.name,
                names.get(e.parent_id or "", e.parent_id),
                names.get(e.forked_from_id or "", e.forked_from_id),
                e.next_iteration_index,
                e.template_id,
            )
            for e in experiments
        ]
        show(table(None, ["id", "name", "parent", "forked from", "next #", "template"], rows))

    emit(experiments, as_json, render)


@app.command("show")
def show_(experiment: ExperimentArg, as_json: JsonOpt = False) -> None:
    """Show an experiment: where it sits in its tree, its config, datasets and iterations."""
    with user_session() as (session, user):
        found = access.experiment(session, user, experiment)
        public = ExperimentPublic.of(found)
        fork_point = (
            access.iteration(session, user, public.forked_from_iteration_id).index
            if public.forked_from_iteration_id
            else None
        )
        indexes = [i.index for i in list_iterations(session, user, public.id)]

    def render() -> None:
        forked = None
        if public.forked_from_id:
            forked = public.forked_from_id + (f" @ #{fork_point}" if fork_point is not None else "")
        show(
            details(
                public.name,
                [
                    ("id", public.id),
                    ("project", public.project_id),
                    ("parent", public.parent_id),
                    ("forked from", forked),
                    ("template", public.template_id),
                    ("config", public.template_config),
                    ("git", " @ ".join(x for x in (public.git_repo, public.git_commit) if x) or None),
                    ("datasets", public.dataset_ids),
                    ("iterations", [f"#{i}" for i in indexes]),
                    ("created", public.created_at),
                ],
            )
        )
        if public.description:
            show(Markdown(public.description))

    emit(public, as_json, render)


@app.command("edit")
def edit(
    experiment: ExperimentArg,
    name: Annotated[str | None, typer.Option("--name", help="A new name.", show_default=False)] = None,
    description: DescriptionOpt = None,
    parent: ParentOpt = None,
    root: Annotated[bool, typer.Option("--root", help="Move to the top of its tree (no parent).")] = False,
    config: ConfigOpt = None,
    git_repo: GitRepoOpt = None,
    git_commit: GitCommitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit an experiment; --parent moves it (refusing cycles and other projects), --root lifts it to the top."""
    data = ExperimentUpdate(
        name=name,
        description=description,
        parent_id=parent,
        make_root=root,
        template_config=parse_key_values(config, field="template_config") if config else None,
        git_repo=git_repo,
        git_commit=git_commit,
    )
    if not data.model_dump(exclude_defaults=True):
        raise InvalidInput(
            "nothing to change",
            field="experiment",
            allowed="--name, --description, --parent, --root, --config, --git-repo, --git-commit",
        )
    with user_session() as (session, user):
        public = ExperimentPublic.of(update_experiment(session, user, experiment, data))
    emit(public, as_json, lambda: say(f"Updated experiment {public.name} ({public.id})."))


@app.command("fork")
def fork(
    experiment: ExperimentArg,
    name: NameArg,
    from_iteration: Annotated[
        int | None,
        typer.Option(
            "--from-iteration",
            "-i",
            metavar="INDEX",
            help="Fork from this iteration (default: the latest).",
            show_default=False,
        ),
    ] = None,
    parent: ParentOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fork an experiment from one of its iterations: datasets and assets are linked, never copied."""
    data = ExperimentFork(name=name, iteration_index=from_iteration, parent_id=parent)
    with user_session() as (session, user):
        source = access.experiment(session, user, experiment).name
        public = ExperimentPublic.of(fork_experiment(session, user, experiment, data))
        point = (
            access.iteration(session, user, public.forked_from_iteration_id).index
            if public.forked_from_iteration_id
            else None
        )
        linked = len(list_assets(session, user, experiment_id=public.id))

    def render() -> None:
        at = f" @ #{point}" if point is not None else " (it had no iterations)"
        say(f"Forked {source}{at} into {public.name} ({public.id}); {linked} asset(s) linked by reference.")
        next_steps(f"flywheel iteration create {public.id}", f"flywheel tree {public.project_id}")

    emit(public, as_json, render)


@app.command("delete")
def delete(
    experiment: ExperimentArg,
    cascade: Annotated[
        bool, typer.Option("--cascade", help="Also delete its descendants (default: they move up to its parent).")
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Delete an experiment with its iterations and assets. Its children move up, or go too with --cascade."""
    with user_session() as (session, user):
        found = access.experiment(session, user, experiment)
        name, ident = found.name, found.id
    what = "and all its descendants" if cascade else "(its children move up to its parent)"
    if not yes:
        typer.confirm(f"Delete experiment {name} ({ident}) {what}?", abort=True)
    with user_session() as (session, user):
        deleted = delete_experiment(session, user, ident, cascade=cascade)
    say(f"Deleted {len(deleted)} experiment(s): {', '.join(deleted)}.")


@app.command("link-dataset")
def link_dataset_(experiment: ExperimentArg, dataset: DatasetArg, as_json: JsonOpt = False) -> None:
    """Link an input dataset to an experiment."""
    with user_session() as (session, user):
        public = ExperimentPublic.of(link_dataset(session, user, experiment, dataset))
    emit(public, as_json, lambda: say(f"Linked {dataset} to {public.name}; datasets: {', '.join(public.dataset_ids)}."))


@app.command("unlink-dataset")
def unlink_dataset_(experiment: ExperimentArg, dataset: DatasetArg, as_json: JsonOpt = False) -> None:
    """Unlink an input dataset from an experiment."""
    with user_session() as (session, user):
        public = ExperimentPublic.of(unlink_dataset(session, user, experiment, dataset))
    emit(public, as_json, lambda: say(f"Unlinked {dataset} from {public.name}."))
