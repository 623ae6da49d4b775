"""`tradecore users`: the API's users file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from api.cli.reporting import Commands, console, fail
from api.users import Role

app = Commands(help="API users (a TOML file of names, argon2 hashes, roles and accounts).")
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]


def _password(from_stdin: bool, prompt: str) -> str:
    """A password from stdin, TRADECORE_USER_PASSWORD or a hidden prompt asked twice — never from argv."""
    import os
    import sys

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get("TRADECORE_USER_PASSWORD") or typer.prompt(
            prompt, hide_input=True, confirmation_prompt=True
        )
    if not password:
        raise fail("the password is empty", code=2)
    return password


@app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[list[Role], typer.Option("--role", help="A role of the user; repeatable.")],
    account: Annotated[
        list[str] | None, typer.Option("--account", help="An account a trader may trade; repeatable.")
    ] = None,
    file: Annotated[Path, typer.Option(help="The users file (TRADECORE_USERS_FILE).")] = Path("users.toml"),
    password_stdin: PasswordStdin = False,
) -> None:
    """Add or replace a user; the password is stored only as an argon2 hash.

    The password never comes from the command line (where `ps` and shell history show it): it is prompted for
    (hidden, twice), read from standard input with --password-stdin, or taken from TRADECORE_USER_PASSWORD."""
    from api.users import add_user

    add_user(file, name, _password(password_stdin, "Password"), role, account or [])
    console.print(f"{name} saved to {file} ({', '.join(role)})")


# The users commands below revoke the user's tokens: the API re-reads the file within TRADECORE_USERS_RECHECK_S.
UsersFileOption = Annotated[
    Path, typer.Option("--file", envvar="TRADECORE_USERS_FILE", help="The users file (TRADECORE_USERS_FILE).")
]
Change = Literal["remove", "disable", "enable", "set-password"]


def _change_user(change: Change, name: str, file: Path, password: str | None = None) -> None:
    from api import users

    if change == "remove":
        users.remove_user(file, name)
    elif change == "disable":
        users.disable_user(file, name)
    elif change == "enable":
        users.enable_user(file, name)
    else:
        users.set_password(file, name, password or "")
    console.print(f"{name}: {change} done in {file}; their earlier tokens are refused from now on")


@app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="User name.")], file: UsersFileOption = Path("users.toml")
) -> None:
    """Remove a user: they cannot sign in, and their tokens are refused."""
    _change_user("remove", name, file)


@app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="User name.")], file: UsersFileOption = Path("users.toml")
) -> None:
    """Disable a user, keeping them in the file: they cannot sign in, and their tokens are refused."""
    _change_user("disable", name, file)


@app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="User name.")], file: UsersFileOption = Path("users.toml")
) -> None:
    """Let a disabled user sign in again (their old tokens stay refused)."""
    _change_user("enable", name, file)


@app.command("set-password")
def users_set_password(
    name: Annotated[str, typer.Argument(help="User name.")],
    file: UsersFileOption = Path("users.toml"),
    password_stdin: PasswordStdin = False,
) -> None:
    """Replace a user's password and revoke their tokens. The password is prompted for (or read from stdin or
    TRADECORE_USER_PASSWORD), never taken from the command line, where other users of the machine can read it."""
    _change_user("set-password", name, file, _password(password_stdin, "New password"))
