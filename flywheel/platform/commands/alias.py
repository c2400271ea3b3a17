"""`flywheel project alias`: a project's named pointers to iterations (autoresearch keeps ``champion``).

Usage:
    flywheel project alias drive                            # list the project's aliases
    flywheel project alias drive champion                   # where one points
    flywheel project alias drive best --set itr_0123456789ab
"""

from __future__ import annotations

from typing import Annotated

import typer

from flywheel.cli_output import JsonOpt, ProjectArg, emit, next_steps, say, show, table
from flywheel.platform.aliases import AliasPublic, get_alias, list_aliases, set_alias
from flywheel.platform.commands._identity import user_session


def alias(
    project: ProjectArg,
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Alias name, e.g. champion.")] = None,
    set_: Annotated[str | None, typer.Option("--set", metavar="ITERATION",
                                             help="Point NAME at this iteration (itr_…) of the project.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a project's aliases, show one, or point one at an iteration with --set."""
    with user_session() as (session, user):
        if name is None:
            if set_ is not None:
                from flywheel.errors import InvalidInput

                raise InvalidInput("--set needs an alias NAME", field="NAME", hint="e.g. `flywheel project alias "
                                   f"{project} champion --set {set_}`")
            found = [AliasPublic.model_validate(a) for a in list_aliases(session, user, project)]
        elif set_ is not None:
            found = [AliasPublic.model_validate(set_alias(session, user, project, name, set_))]
        else:
            found = [AliasPublic.model_validate(get_alias(session, user, project, name))]

    def render() -> None:
        if not found:
            say(f"Project {project} has no aliases yet.")
            next_steps(f"flywheel project alias {project} <name> --set <iteration>", "flywheel autoresearch --help")
            return
        show(table(None, ["alias", "iteration", "updated"], [(a.name, a.iteration_id, a.updated_at) for a in found]))
        next_steps(f"flywheel iteration show {found[0].iteration_id}")

    emit(found if name is None else found[0], as_json, render)
