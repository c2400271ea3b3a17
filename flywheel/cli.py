"""The `flywheel` command: the Typer app, its command groups, and the table of errors and their fixes.

Usage:
    flywheel user create ada
    flywheel project create look-at --description "Turn the head toward the target."
    flywheel experiment create look-at baseline
    flywheel tree look-at
    flywheel serve --port 8000
    flywheel demo

Errors a user can fix (bad input, a missing object, a conflict, no identity) print two lines on stderr,
`error: …` and `hint: …`, and exit with code 1; never a traceback. The table below is the one place
that decides what each kind of error says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from flywheel.autoresearch.commands import autoresearch as autoresearch_command
from flywheel.datasets import commands as dataset
from flywheel.errors import Conflict, FlywheelError, IntegrityError, InvalidInput, NotFound, Unauthorized
from flywheel.jobs import commands as job_commands
from flywheel.platform.commands import asset, experiment, iteration, project, user
from flywheel.platform.commands._identity import FIX as IDENTITY_FIX
from flywheel.platform.commands.alias import alias as project_alias
from flywheel.platform.commands.lineage import lineage
from flywheel.platform.commands.tree import tree
from flywheel.safety import commands as safety_commands
from flywheel.safety.verify import commands as verify_commands
from flywheel.settings import get_settings
from flywheel.training import commands as training_commands

# --- errors: one table, one line each -------------------------------------------------------------------

Explain = Callable[[Any, str], tuple[str, str]]


def _validation(exc: ValidationError, command: str) -> tuple[str, str]:
    problems = []
    fields = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or exc.title
        fields.append(field)
        problems.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(
        problems
    ), f"Fix {', '.join(dict.fromkeys(fields))} and run again; `{command} --help` lists the options."


def _invalid(exc: InvalidInput, command: str) -> tuple[str, str]:
    return (
        exc.message,
        exc.hint or f"Fix {exc.field or 'the value'} and run again; `{command} --help` lists the options.",
    )


def _not_found(exc: NotFound, command: str) -> tuple[str, str]:
    return exc.message, exc.hint or f"Check the {exc.kind} id; `flywheel tree <project>` shows your experiments."


def _conflict(exc: Conflict, command: str) -> tuple[str, str]:
    return exc.message, exc.hint or "Nothing was changed; resolve the conflict and run again."


def _unauthorized(exc: Unauthorized, command: str) -> tuple[str, str]:
    return exc.message, IDENTITY_FIX


def _integrity(exc: IntegrityError, command: str) -> tuple[str, str]:
    return exc.message, exc.hint or "Stored data is damaged; restore the blob store from a backup or re-upload it."


def _flywheel(exc: FlywheelError, command: str) -> tuple[str, str]:
    return exc.message, exc.hint or f"`{command} --help` shows how to use it."


def _database(exc: OperationalError, command: str) -> tuple[str, str]:
    url = make_url(get_settings().resolved_database_url()).render_as_string(hide_password=True)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return (
        f"cannot use the database {url}: {reason}",
        "Check FLYWHEEL_DATABASE_URL (and that the server is up), or unset it to use SQLite in FLYWHEEL_HOME.",
    )


#: Each error a user can cause, most specific first, with what it says and what to do about it.
ERRORS: dict[type[BaseException], Explain] = {
    ValidationError: _validation,
    InvalidInput: _invalid,
    NotFound: _not_found,
    Conflict: _conflict,
    Unauthorized: _unauthorized,
    IntegrityError: _integrity,
    FlywheelError: _flywheel,
    OperationalError: _database,
}


def explain(exc: BaseException, command: str = "flywheel") -> tuple[str, str] | None:
    """The (error, hint) lines for an exception a user can fix, or None for a bug.

    Example:
        >>> explain(NotFound("project", "nope", hint="`flywheel project list` shows your projects."))
        ('project nope not found', '`flywheel project list` shows your projects.')
    """
    for kind, describe in ERRORS.items():
        if isinstance(exc, kind):
            return describe(exc, command)
    return None


class FlywheelGroup(TyperGroup):
    """The root group: turns the errors in ERRORS into `error:`/`hint:` lines on stderr and exit code 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        command = _command_path(self, ctx)
        try:
            return super().invoke(ctx)
        except tuple(ERRORS) as exc:
            message, hint = explain(exc, command) or (str(exc), "")
            typer.echo(f"error: {message}", err=True)
            typer.echo(f"hint: {hint}", err=True)
            raise typer.Exit(1) from None


def _command_path(group: TyperGroup, ctx: typer.Context) -> str:
    """`flywheel project create` for the arguments about to run (for hints)."""
    words = [ctx.info_name or "flywheel"]
    commands = group.commands
    for arg in [*ctx._protected_args, *ctx.args]:
        if arg not in commands:
            break
        words.append(arg)
        commands = getattr(commands[arg], "commands", {})
    return " ".join(words)


# --- the app -----------------------------------------------------------------------------------------------

app = typer.Typer(
    name="flywheel",
    cls=FlywheelGroup,
    help="Flywheel: record → datasets → train → search → verify → ship → collect → again.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(user.app, name="user")
project.app.command("alias")(project_alias)
app.add_typer(project.app, name="project")
app.add_typer(experiment.app, name="experiment")
app.add_typer(iteration.app, name="iteration")
app.add_typer(asset.app, name="asset")
app.add_typer(dataset.app, name="dataset")
app.command("tree")(tree)
app.command("lineage")(lineage)
app.add_typer(training_commands.app, name="template")
app.command("train")(training_commands.train)
app.command("eval")(training_commands.evaluate_model)
app.command("verify")(verify_commands.verify_command)
app.add_typer(job_commands.app, name="job")
app.command("worker")(job_commands.worker)
app.command("autoresearch")(autoresearch_command)
app.add_typer(safety_commands.app, name="estop")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) with uvicorn."""
    import uvicorn  # lazy: the API stack is only needed here

    typer.echo(f"Serving the Flywheel API on http://{host}:{port}/api/v1 (OpenAPI: /api/v1/openapi.json).", err=True)
    typer.echo("Authenticate with `Authorization: Bearer <api key>`. Ctrl+C stops it.", err=True)
    uvicorn.run("flywheel.api.app:create_app", factory=True, host=host, port=port)


@app.command("demo")
def demo(
    home: Annotated[
        Path, typer.Option(help="The demo's own home; wiped at the start (only if a previous demo made it).")
    ] = Path(".flywheel-demo"),
) -> None:
    """Run the demo end to end in its own home: a project, an experiment tree with a fork, shared assets."""
    from flywheel.demo import run_demo

    run_demo(home)


def main() -> None:
    """The `flywheel` console script."""
    app(prog_name="flywheel")


if __name__ == "__main__":  # pragma: no cover
    main()
