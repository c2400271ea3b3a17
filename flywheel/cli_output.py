"""Shared CLI option types and output helpers: rich tables for people, `--json` for scripts.

Every command module imports its arguments and options from here, so the same thing is spelled the
same way everywhere (`--json`, `--yes`, `--description`, `--config KEY=VALUE`).

Example:
    >>> parse_key_values(["lr=0.001", "env=head"], field="config")
    {'lr': 0.001, 'env': 'head'}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from flywheel.errors import InvalidInput

# --- shared arguments and options ----------------------------------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="Project name or id (prj_…).")]
ExperimentArg = Annotated[str, typer.Argument(metavar="EXPERIMENT", help="Experiment id (exp_…).")]
IterationArg = Annotated[str, typer.Argument(metavar="ITERATION", help="Iteration id (itr_…).")]
AssetArg = Annotated[str, typer.Argument(metavar="ASSET", help="Asset id (ast_…).")]
DatasetArg = Annotated[str, typer.Argument(metavar="DATASET", help="Dataset name or id (dst_…).")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A name: 1-200 characters, no slashes.")]
DescriptionOpt = Annotated[
    str | None, typer.Option("--description", "-d", help="Markdown description.", show_default=False)
]
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        metavar="KEY=VALUE",
        help="A config value; VALUE is read as JSON when it parses (0.1, true, [1,2]), else as text. Repeat.",
        show_default=False,
    ),
]
DatasetOpt = Annotated[
    list[str] | None,
    typer.Option("--dataset", metavar="DATASET", help="An input dataset name or id. Repeat.", show_default=False),
]


def parse_key_values(items: Iterable[str] | None, *, field: str) -> dict[str, Any]:
    """Turn `["a=1", "b=text"]` into `{"a": 1, "b": "text"}`; values are JSON when they parse, else text.

    Raises:
        InvalidInput: an item has no `=` or an empty key (names `field`).
    """
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"{item!r} is not KEY=VALUE", field=field, allowed="KEY=VALUE, e.g. lr=0.001")
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result


# --- output ----------------------------------------------------------------------------------------------


def console() -> Console:
    """A console on the current stdout (made per call, so test runners that swap stdout see the output)."""
    return Console(highlight=False)


def err_console() -> Console:
    """A console on the current stderr, for progress and warnings."""
    return Console(stderr=True, highlight=False)


def to_jsonable(data: Any) -> Any:
    """Pydantic models (and lists/dicts of them) as plain JSON values."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {key: to_jsonable(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [to_jsonable(value) for value in data]
    if isinstance(data, datetime):
        return data.isoformat()
    return data


def print_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout, nothing else (safe to pipe into `jq`)."""
    typer.echo(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False))


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print `data` as JSON when `as_json`, else call `render` to draw it for people."""
    if as_json:
        print_json(data)
    else:
        render()


def say(message: str | Text) -> None:
    """Print one line for people (no markup is interpreted in plain strings: names stay as typed)."""
    console().print(message if isinstance(message, Text) else Text(message))


def next_steps(*commands: str) -> None:
    """Print what to do next: one command per line."""
    out = console()
    out.print(Text("Next:", style="bold"))
    for command in commands:
        out.print(Text(f"  {command}", style="cyan"))


#: Table columns whose text may wrap; every other column (ids, hashes, sizes, dates) stays on one line.
WRAPPING = frozenset({"name", "description", "notes", "tags", "overrides", "parent", "forked from", "template"})


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table; ids, hashes, sizes and dates never wrap, so they can be copied whole."""
    result = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for column in columns:
        if column in WRAPPING:
            result.add_column(column, overflow="fold")
        else:
            result.add_column(column, no_wrap=True)
    for row in rows:
        result.add_row(*(cell if isinstance(cell, Text) else Text(_cell(cell)) for cell in row))
    return result


def details(title: str, fields: Sequence[tuple[str, Any]]) -> Table:
    """A two-column key/value table for `show` commands."""
    result = Table.grid(padding=(0, 2))
    result.title = title
    result.title_justify = "left"
    result.title_style = "bold"
    result.add_column(style="bold", no_wrap=True)
    result.add_column(overflow="fold")
    for key, value in fields:
        result.add_row(key, value if isinstance(value, Text) else Text(_cell(value)))
    return result


def show(*renderables: RenderableType) -> None:
    """Print rich renderables on stdout."""
    out = console()
    for renderable in renderables:
        out.print(renderable)


def first_line(text: str, width: int = 60) -> str:
    """The first line of `text`, cut to `width` characters.

    Example:
        >>> first_line("Turn the head.\\nThen hold it.")
        'Turn the head.'
    """
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def human_size(size: int) -> str:
    """Bytes as a short human string.

    Example:
        >>> human_size(1536)
        '1.5 KiB'
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - unreachable


def when(moment: datetime) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM` (UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "—"
    return str(value)
