"""Projects: one task being solved ("look at the target", "drive the track").

Usage:
    flywheel project create look-at --description "Turn the head toward the target."
    flywheel project list
    flywheel project show look-at --json
    flywheel project edit look-at --name look-at-v2 --description "…"
    flywheel project edit look-at --showcase dst_0123abcd:0 --showcase dst_4567ef01:3
    flywheel project delete look-at --yes            # --force also cancels its running jobs
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markdown import Markdown

from flywheel.cli_output import (
    DescriptionOpt,
    JsonOpt,
    NameArg,
    ProjectArg,
    YesOpt,
    details,
    emit,
    first_line,
    next_steps,
    say,
    show,
    table,
)
from flywheel.errors import InvalidInput
from flywheel.platform import access
from flywheel.platform.commands._identity import user_session
from flywheel.platform.commands.tree import render_tree
from flywheel.platform.experiments import tree as experiment_tree
from flywheel.platform.projects import create_project, delete_project, list_projects, update_project
from flywheel.platform.schemas import ProjectCreate, ProjectPublic, ProjectUpdate, ShowcaseRef, TreeNode

app = typer.Typer(help="Projects: one task being solved.", no_args_is_help=True)


@app.command("create")
def create(name: NameArg, description: DescriptionOpt = None, as_json: JsonOpt = False) -> None:
    """Create a project."""
    data = ProjectCreate(name=name, description=description or "")
    with user_session() as (session, user):
        public = ProjectPublic.model_validate(create_project(session, user, data))

    def render() -> None:
        say(f"Created project {public.name} ({public.id}).")
        next_steps(f"flywheel experiment create {public.name} <experiment-name>")

    emit(public, as_json, render)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List your projects."""
    with user_session() as (session, user):
        projects = [ProjectPublic.model_validate(p) for p in list_projects(session, user)]

    def render() -> None:
        if not projects:
            say("No projects yet.")
            next_steps("flywheel project create <name>")
            return
        rows = [(p.id, p.name, first_line(p.description), p.created_at) for p in projects]
        show(table(None, ["id", "name", "description", "created"], rows))

    emit(projects, as_json, render)


@app.command("show")
def show_(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Show a project: its description, showcase videos and experiment trees."""
    with user_session() as (session, user):
        public = ProjectPublic.model_validate(access.project(session, user, project))
        roots = experiment_tree(session, user, public.id)

    def render() -> None:
        showcases = [f"{s.eval_id}:{s.episode_index}" for s in public.showcases]
        show(
            details(
                public.name,
                [
                    ("id", public.id),
                    ("created", public.created_at),
                    ("updated", public.updated_at),
                    ("showcases", showcases),
                ],
            )
        )
        if public.description:
            show(Markdown(public.description))
        show(render_tree(public.name, public.id, roots))

    emit(public, as_json, render)


@app.command("edit")
def edit(
    project: ProjectArg,
    name: Annotated[str | None, typer.Option("--name", help="A new name.", show_default=False)] = None,
    description: DescriptionOpt = None,
    showcase: Annotated[
        list[str] | None,
        typer.Option(
            "--showcase",
            metavar="EVAL[:EPISODE]",
            help="A showcase video from an eval of this project (at most 5). Repeat; replaces the list.",
            show_default=False,
        ),
    ] = None,
    no_showcases: Annotated[bool, typer.Option("--no-showcases", help="Remove every showcase video.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Edit a project's name, description or showcase videos."""
    if showcase and no_showcases:
        raise InvalidInput("give --showcase or --no-showcases, not both", field="showcases")
    showcases = [] if no_showcases else _showcases(showcase) if showcase else None
    if name is None and description is None and showcases is None:
        raise InvalidInput(
            "nothing to change", field="project", allowed="--name, --description, --showcase, --no-showcases"
        )
    data = ProjectUpdate(name=name, description=description, showcases=showcases)
    with user_session() as (session, user):
        public = ProjectPublic.model_validate(update_project(session, user, project, data))
    emit(public, as_json, lambda: say(f"Updated project {public.name} ({public.id})."))


@app.command("delete")
def delete(
    project: ProjectArg,
    force: Annotated[bool, typer.Option("--force", help="Also cancel the project's queued or running jobs.")] = False,
    yes: YesOpt = False,
) -> None:
    """Delete a project and everything in it (experiments, iterations, assets, evals)."""
    with user_session() as (session, user):
        found = access.project(session, user, project)
        name, ident = found.name, found.id
        roots = experiment_tree(session, user, ident)
    if not yes:
        typer.confirm(f"Delete project {name} ({ident}) and {_contents(roots)}?", abort=True)
    with user_session() as (session, user):
        delete_project(session, user, ident, force=force)
    say(f"Deleted project {name} ({ident}) and {_contents(roots)}.")


def _showcases(items: list[str]) -> list[ShowcaseRef]:
    refs = []
    for item in items:
        eval_id, _, episode = item.partition(":")
        if episode and not episode.isdigit():
            raise InvalidInput(f"{item!r}: the episode must be a number", field="showcases", allowed="EVAL[:EPISODE]")
        refs.append(ShowcaseRef(eval_id=eval_id, episode_index=int(episode or 0)))
    return refs


def _contents(roots: list[TreeNode]) -> str:
    experiments = iterations = assets = 0
    stack = list(roots)
    while stack:
        node = stack.pop()
        experiments += 1
        iterations += node.iterations
        assets += node.assets
        stack.extend(node.children)
    return f"its {experiments} experiment(s), {iterations} iteration(s), {assets} asset(s)"
