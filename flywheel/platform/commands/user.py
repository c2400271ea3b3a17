"""Users: who the CLI acts as.

Usage:
    flywheel user create ada                     # prints the API key once and saves it as the CLI's identity
    flywheel user create ci-bot --spend-limit 20 --no-save
    flywheel user whoami
    flywheel user whoami --json
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from flywheel.cli_output import JsonOpt, details, emit, next_steps, say, show
from flywheel.platform.commands._identity import current_user, resolve_identity, save_api_key
from flywheel.platform.schemas import UserCreate, UserCreated, UserPublic
from flywheel.platform.users import create_user
from flywheel.settings import get_settings
from flywheel.store.engine import session_scope

app = typer.Typer(help="Users and the CLI's identity.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Letters, digits and _ . @ - only.")],
    spend_limit: Annotated[
        float, typer.Option("--spend-limit", metavar="USD", help="Global spend limit in USD.")
    ] = 100.0,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Save the key as this CLI's identity (FLYWHEEL_HOME/credentials).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Create a user. Its API key is printed once (only its hash is stored)."""
    data = UserCreate(name=name, spend_limit_usd=spend_limit)
    with session_scope() as session:
        user, api_key = create_user(session, data)
        created = UserCreated.model_validate({**UserPublic.model_validate(user).model_dump(), "api_key": api_key})
        # Saved before the commit: a committed user's key is never lost to a failed write.
        saved = save_api_key(api_key) if save else None

    def render() -> None:
        say(f"Created user {created.name} ({created.id}), spend limit ${created.spend_limit_usd:g}.")
        show(Text.assemble("API key (shown once, keep it): ", (api_key, "bold yellow")))
        if saved is not None:
            say(f"Saved to {saved} (mode 0600): the CLI now acts as {created.name}.")
            next_steps("flywheel project create <name> --description '<what the robot should do>'")
        else:
            next_steps(f"export FLYWHEEL_API_KEY={api_key}")

    emit(created, as_json, render)


@app.command("whoami")
def whoami(as_json: JsonOpt = False) -> None:
    """Show the user the CLI acts as, and where its key came from."""
    with session_scope() as session:
        public = UserPublic.model_validate(current_user(session))
    identity = resolve_identity()
    source = identity.source if identity else "?"

    def render() -> None:
        show(
            details(
                public.name,
                [
                    ("id", public.id),
                    ("spend", f"${public.spend_usd:.2f} of ${public.spend_limit_usd:.2f}"),
                    ("key from", source),
                    ("database", _database()),
                ],
            )
        )

    emit({**public.model_dump(mode="json"), "key_source": source}, as_json, render)


def _database() -> str:
    from sqlalchemy.engine import make_url

    return make_url(get_settings().resolved_database_url()).render_as_string(hide_password=True)
