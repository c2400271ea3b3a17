"""Provenance: where an asset, eval, iteration or experiment came from.

Usage:
    flywheel lineage ast_0123456789ab          # asset → iteration → experiment → project
    flywheel lineage dst_0123456789ab --json   # eval → iteration → experiment → project, and job → template
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from flywheel.cli_output import JsonOpt, emit, show
from flywheel.platform.commands._identity import user_session
from flywheel.platform.lineage import lineage as lineage_of
from flywheel.platform.schemas import Lineage, LineageLink


def lineage(
    ident: Annotated[str, typer.Argument(metavar="ID", help="An id: ast_…, dst_…, itr_…, exp_… or prj_….")],
    as_json: JsonOpt = False,
) -> None:
    """Print where an object came from: its chain up to the project, and the job and template that made it."""
    with user_session() as (session, user):
        chain = lineage_of(session, user, ident)
    emit(chain, as_json, lambda: show(render_lineage(chain)))


def render_lineage(chain: Lineage) -> Text:
    """The chain as a ladder, each link made inside the one below it, then what produced it.

    Example:
        >>> link = LineageLink(kind="project", id="prj_1", name="look-at")
        >>> render_lineage(Lineage(chain=[link], produced_by=[])).plain
        'project look-at  prj_1'
    """
    text = Text()
    for depth, link in enumerate(chain.chain):
        if depth:
            text.append("\n" + "   " * (depth - 1) + "└─ ", style="dim")
        _link(text, link)
    for link in chain.produced_by:
        text.append("\nproduced by ", style="dim")
        _link(text, link)
    return text


def _link(text: Text, link: LineageLink) -> None:
    text.append(f"{link.kind} ", style="bold")
    text.append(link.name, style="cyan")
    text.append(f"  {link.id}", style="dim")
