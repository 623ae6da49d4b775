"""`tradecore users`: the API's users file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.reporting import Commands, console
from api.roles import Role

app = Commands(help="API users (a TOML file of names, argon2 hashes, roles and accounts).")


@app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[list[Role], typer.Option("--role", help="A role of the user; repeatable.")],
    account: Annotated[
        list[str] | None, typer.Option("--account", help="An account a trader may trade; repeatable.")
    ] = None,
    file: Annotated[Path, typer.Option(help="The users file (TRADECORE_USERS_FILE).")] = Path("users.toml"),
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Add or replace a user; the password is stored only as an argon2 hash."""
    from api.auth import add_user

    add_user(file, name, password, role, account or [])
    console.print(f"{name} saved to {file} ({', '.join(role)})")
