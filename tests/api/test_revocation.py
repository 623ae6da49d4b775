"""Tokens are revocable (issue 12 F5): `tradecore users remove|disable|set-password` on the users file the running
API reads makes the user's tokens refused within 5 s, without a restart, and their old sign-in refused too."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.users import Role, add_user
from deploy.local.stack import Endpoints
from tests.api.conftest import order
from tests.support.api_server import PASSWORD, ApiServer, api_server

pytestmark = pytest.mark.integration
REVOKED_WITHIN_S = 5.0
TRADECORE = str(Path(sys.executable).with_name("tradecore"))


@pytest.fixture(scope="module")
def served(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    """An API of this module's own, and the users file it reads."""
    workdir = tmp_path_factory.mktemp("revocation")
    prefix = f"revoke-{uuid.uuid4().hex[:8]}."
    with api_server(endpoints, workdir, prefix, TRADECORE_RATE_LIMIT="1000/second") as api:
        yield api, workdir / "users.toml"


@pytest.fixture
def trader(served: tuple[ApiServer, Path]) -> str:
    """A trader of this test's own, added to the file while the API runs."""
    _, users = served
    name = f"t-{uuid.uuid4().hex[:8]}"
    add_user(users, name, PASSWORD, [Role.TRADER], ["ACC-R1"])
    return name


def sign_in(api: ApiServer, name: str, password: str = PASSWORD) -> httpx.Response:
    deadline = time.monotonic() + REVOKED_WITHIN_S  # a user just added is known once the API has re-read the file
    while True:
        answer = api.login(name, password)
        if answer.status_code != 401 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def token_of(api: ApiServer, name: str, password: str = PASSWORD) -> str:
    answer = sign_in(api, name, password)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def place(api: ApiServer, token: str) -> int:
    answer = httpx.post(
        f"{api.url}/v1/orders", json=order("ACC-R1"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return answer.status_code


def refused_within(api: ApiServer, token: str) -> float:
    """Seconds until a request with ``token`` is 401 (the token was good just before)."""
    started = time.monotonic()
    while place(api, token) != 401:
        assert time.monotonic() - started < REVOKED_WITHIN_S, "the revoked token still places orders"
        time.sleep(0.1)
    return time.monotonic() - started


def users_command(users: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run([TRADECORE, "users", *args, "--file", str(users)], input=stdin, text=True, check=True)


def test_a_removed_user_cannot_sign_in_and_their_token_is_refused(served: tuple[ApiServer, Path], trader: str) -> None:
    api, users = served
    token = token_of(api, trader)
    assert place(api, token) == 202
    users_command(users, "remove", trader)
    refused_within(api, token)
    assert api.login(trader).status_code == 401


def test_a_disabled_user_cannot_sign_in_and_their_token_is_refused(served: tuple[ApiServer, Path], trader: str) -> None:
    api, users = served
    token = token_of(api, trader)
    assert place(api, token) == 202
    users_command(users, "disable", trader)
    refused_within(api, token)
    assert api.login(trader).status_code == 401
    users_command(users, "enable", trader)
    assert place(api, token_of(api, trader)) == 202
    assert place(api, token) == 401, "enabling a user again does not bring their old tokens back"


def test_a_new_password_revokes_the_old_tokens_and_the_old_password(
    served: tuple[ApiServer, Path], trader: str
) -> None:
    api, users = served
    token = token_of(api, trader)
    assert place(api, token) == 202
    users_command(users, "set-password", trader, "--password-stdin", stdin="a new passphrase of hers\n")
    refused_within(api, token)
    assert api.login(trader).status_code == 401
    assert place(api, token_of(api, trader, "a new passphrase of hers")) == 202


def test_a_user_removed_and_added_again_does_not_get_their_old_tokens_back(
    served: tuple[ApiServer, Path], trader: str
) -> None:
    api, users = served
    token = token_of(api, trader)
    users_command(users, "remove", trader)
    refused_within(api, token)
    add_user(users, trader, PASSWORD, [Role.TRADER], ["ACC-R1"])
    fresh = token_of(api, trader)
    assert place(api, fresh) == 202
    assert place(api, token) == 401


def test_set_password_never_takes_the_password_from_the_command_line(served: tuple[ApiServer, Path]) -> None:
    _, users = served
    answer = subprocess.run(
        [TRADECORE, "users", "set-password", "alice", "--file", str(users), "--password", "on-argv"],
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 2  # typer: no such option
    assert "No such option" in answer.stderr
