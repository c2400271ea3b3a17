"""`flywheel estop`: the emergency stop from a terminal (the same functions as the API and the UI button).

Usage:
    flywheel estop --reason "person in the cell"        # latch every device ('*')
    flywheel estop --scope reachy-01 --reason "cable"    # latch one device
    flywheel estop status                                # latched scopes and the recent events
    flywheel estop reset --reason "cell clear"           # by the user who latched it
    flywheel estop reset --force --reason "ada left; checked the cell"   # anyone else: forced, logged

Any user can stop; only the user who latched a scope resets it without --force (see `flywheel.safety.estop`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from flywheel.cli_output import JsonOpt, emit, next_steps, say, show, table
from flywheel.platform.commands._identity import user_session
from flywheel.safety import estop
from flywheel.safety.estop import EstopState

ScopeOpt = Annotated[
    str, typer.Option("--scope", "-s", metavar="SCOPE", help="'*' (every device) or a device name.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (logged with your name and the time).")]

app = typer.Typer(
    help="Emergency stop: latch every runtime into its safe action; stays latched until an explicit reset.",
    invoke_without_command=True,
)


@app.callback()
def stop(ctx: typer.Context, reason: ReasonOpt = "", scope: ScopeOpt = estop.ALL, as_json: JsonOpt = False) -> None:
    """Latch the emergency stop now (without a subcommand). Runtimes obey it at their next control tick."""
    if ctx.invoked_subcommand is not None:
        return
    with user_session() as (session, user):
        state = estop.trigger(session, user, reason, scope)

    def render() -> None:
        show(Text(f"EMERGENCY STOP latched: {_scope_text(scope)}", style="bold red"))
        _print_latches(state)
        next_steps("flywheel estop status", f"flywheel estop reset{_scope_arg(scope)} --reason '<why it is safe>'")

    emit(state, as_json, render)


@app.command("reset")
def reset(
    scope: ScopeOpt = estop.ALL,
    reason: ReasonOpt = "",
    force: Annotated[bool, typer.Option("--force", help="Reset a latch another user holds (needs --reason).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Release a latch you hold (or another user's with --force and --reason; logged as forced)."""
    with user_session() as (session, user):
        state = estop.reset(session, user, scope, reason=reason, force=force)

    def render() -> None:
        forced = " (forced)" if state.events and state.events[0].forced else ""
        say(f"Emergency stop released{forced}: {_scope_text(scope)}.")
        if state.latched:
            show(Text("Still latched by another scope:", style="bold red"))
        _print_latches(state)

    emit(state, as_json, render)


@app.command("status")
def status(
    scope: ScopeOpt = estop.ALL,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent events to list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Whether the scope is latched, who holds each latch, and the recent stops and resets."""
    with user_session() as (session, _user):
        state = estop.status(session, scope, limit=limit)

    def render() -> None:
        if state.latched:
            show(Text(f"LATCHED: {_scope_text(scope)} must hold its safe action.", style="bold red"))
        else:
            show(Text(f"Not latched: {_scope_text(scope)} may run.", style="bold green"))
        _print_latches(state)
        if state.events:
            rows = [(e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.action + (" (forced)" if e.forced else ""),
                     e.scope, e.user_name, e.reason) for e in state.events]
            show(table("Recent events", ["when (UTC)", "action", "scope", "user", "notes"], rows))

    emit(state, as_json, render)


def _print_latches(state: EstopState) -> None:
    if state.latches:
        rows = [(x.scope, x.held_by_name, x.since.strftime("%Y-%m-%d %H:%M:%S") if x.since else "", x.reason)
                for x in state.latches]
        show(table("Latched", ["scope", "held by", "since (UTC)", "notes"], rows))


def _scope_text(scope: str) -> str:
    return "every device (*)" if scope == estop.ALL else f"device {scope}"


def _scope_arg(scope: str) -> str:
    return "" if scope == estop.ALL else f" --scope {scope}"
