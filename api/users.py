"""The users file: names, argon2 password hashes, roles, accounts, and each user's token generation.

A user's ``generation`` is a random value re-rolled whenever the user changes (password, roles, accounts, disabled).
Every access token carries the generation it was issued under, so a change makes the user's older tokens invalid
as soon as the API has re-read the file. Random rather than a counter: a user removed and added again under the
same name must not find their old tokens valid again.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from pwdlib import PasswordHash

from api.errors import ConfigurationError

log = logging.getLogger("tradecore.api")
hasher = PasswordHash.recommended()


class Role(StrEnum):
    TRADER = "trader"  # trades the accounts listed for them, and only those
    VIEWER = "viewer"  # reads; sends no command
    RISK = "risk"  # sets risk limits and kill switches; separate from trading by design (separation of duties)
    ADMIN = "admin"  # market data and operations on any account's orders


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    roles: frozenset[Role]
    accounts: frozenset[str]
    generation: str = ""  # files written before generations existed: their tokens name "" too
    disabled: bool = False


class UnknownUser(ConfigurationError):
    """The users file has no user of that name."""


def hash_password(password: str) -> str:
    return hasher.hash(password)


def new_generation() -> str:
    return secrets.token_hex(8)


def load_users(path: Path) -> dict[str, User]:
    """``[[user]]`` tables: name, password_hash (argon2), roles, accounts, generation, disabled."""
    try:
        tables = tomllib.loads(path.read_text()).get("user", [])
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(
            f"cannot read users from {path}: {err}",
            hint="set TRADECORE_USERS_FILE; add users with `tradecore users add`",
        ) from err
    users = {}
    for table in tables:
        try:
            users[table["name"]] = User(
                name=table["name"],
                password_hash=table["password_hash"],
                roles=frozenset(Role(r) for r in table.get("roles", [])),
                accounts=frozenset(table.get("accounts", [])),
                generation=str(table.get("generation", "")),
                disabled=bool(table.get("disabled", False)),
            )
        except (KeyError, ValueError) as err:
            raise ConfigurationError(f"user {table.get('name', '?')} in {path} is not valid: {err}") from err
    return users


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write the file whole and swap it in, so the API never reads half of it; readable by its owner only."""
    lines = []
    for user in users.values():
        lines += [
            "[[user]]",
            f"name = {json.dumps(user.name)}",
            f"password_hash = {json.dumps(user.password_hash)}",
            f"roles = {json.dumps(sorted(user.roles))}",
            f"accounts = {json.dumps(sorted(user.accounts))}",
            f"generation = {json.dumps(user.generation)}",
            f"disabled = {json.dumps(user.disabled)}",
            "",
        ]
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines))
    staging.replace(path)


def add_user(path: Path, name: str, password: str, roles: list[Role], accounts: list[str]) -> None:
    """Add or replace a user in a users file, keeping the others; a replaced user's tokens stop working."""
    users = load_users(path) if path.exists() else {}
    users[name] = User(name, hash_password(password), frozenset(roles), frozenset(accounts), new_generation())
    save_users(path, users)


def _rewrite(path: Path, name: str, change: Callable[[User], User]) -> None:
    users = load_users(path)
    if name not in users:
        raise UnknownUser(f"no user {name} in {path}")
    users[name] = replace(change(users[name]), generation=new_generation())
    save_users(path, users)


def remove_user(path: Path, name: str) -> None:
    users = load_users(path)
    if users.pop(name, None) is None:
        raise UnknownUser(f"no user {name} in {path}")
    save_users(path, users)


def disable_user(path: Path, name: str) -> None:
    """Refuse the user's sign-ins and revoke their tokens, keeping the user in the file."""
    _rewrite(path, name, lambda user: replace(user, disabled=True))


def enable_user(path: Path, name: str) -> None:
    _rewrite(path, name, lambda user: replace(user, disabled=False))


def set_password(path: Path, name: str, password: str) -> None:
    """Replace the user's password; their tokens issued under the old one stop working."""
    password_hash = hash_password(password)
    _rewrite(path, name, lambda user: replace(user, password_hash=password_hash))


class UsersFile:
    """The users as the file says now: re-read when its modification time or size changes, looked at no more
    than once per ``recheck_s`` (one ``stat``), so a removed user's tokens stop working within that time plus a
    request, without a restart."""

    def __init__(self, path: Path, recheck_s: float = 1.0) -> None:
        self._path = path
        self._recheck_s = recheck_s
        self._lock = threading.Lock()  # logins look from the threadpool, token checks from the event loop
        self._users = load_users(path)  # first: a missing or broken file is a ConfigurationError saying what to do
        self._stamp = self._stat()
        self._next_look = time.monotonic() + recheck_s

    def _stat(self) -> tuple[int, int, int]:
        found = self._path.stat()
        return found.st_mtime_ns, found.st_size, found.st_ino

    def get(self, name: str) -> User | None:
        if time.monotonic() >= self._next_look:
            self._refresh()
        return self._users.get(name)

    def _refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_look:
                return
            self._next_look = now + self._recheck_s
            try:
                stamp = self._stat()
                if stamp == self._stamp:
                    return
                users = load_users(self._path)
            except (OSError, ConfigurationError) as err:
                # Keep the last good users: a file being edited by hand must not lock everyone out. `tradecore
                # users` swaps the file in whole, so it is never seen half-written.
                log.error("users file not re-read, keeping the previous users: %s", err)
                return
            self._users, self._stamp = users, stamp
            log.info("users file re-read: %d users", len(users))
