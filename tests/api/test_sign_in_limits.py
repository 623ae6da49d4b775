"""Sign-in limits (issue 12 F6): failures only are counted, per user name from one client address and per address
over all names, with backoff; the real user is never locked out by someone else's guesses; and an unknown name
takes as long to refuse as a wrong password. Client addresses differ by binding the client to 127.0.0.x."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from deploy.local.stack import Endpoints
from tests.support.api_server import PASSWORD, ApiServer, api_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API with the shipped sign-in limits (10 failures a minute per name and address, 20 per address)."""
    with api_server(endpoints, tmp_path_factory.mktemp("signin"), f"signin-{uuid.uuid4().hex[:8]}.") as api:
        yield api


def sign_in(api: ApiServer, name: str, password: str, address: str) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30) as client:
        return client.post(f"{api.url}/v1/auth/token", data={"username": name, "password": password})


def test_a_guessers_failures_never_lock_the_real_user_out(served: ApiServer) -> None:
    guesser, owner = "127.0.0.2", "127.0.0.1"
    statuses = [sign_in(served, "alice", f"guess {i}", guesser).status_code for i in range(11)]
    assert statuses == [401] * 10 + [429]
    refused = sign_in(served, "alice", PASSWORD, guesser)
    assert refused.status_code == 429, "the guesser's address is stopped even with the right password"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["content-type"] == "application/problem+json"
    assert sign_in(served, "alice", PASSWORD, owner).status_code == 200


def test_successful_sign_ins_are_not_counted(served: ApiServer) -> None:
    statuses = [sign_in(served, "bob", PASSWORD, "127.0.0.1").status_code for _ in range(15)]
    assert statuses == [200] * 15


def test_spraying_one_guess_across_many_names_is_limited_per_address(served: ApiServer) -> None:
    sprayer = "127.0.0.3"
    statuses = [sign_in(served, f"user-{i}", "Winter2026!", sprayer).status_code for i in range(21)]
    assert statuses == [401] * 20 + [429]
    assert sign_in(served, "vera", PASSWORD, sprayer).status_code == 429
    assert sign_in(served, "vera", PASSWORD, "127.0.0.4").status_code == 200


def test_an_unknown_name_takes_as_long_to_refuse_as_a_wrong_password(served: ApiServer) -> None:
    """Without a dummy hash for unknown names an unknown name answers in a fraction of the time argon2 takes, and
    the difference tells which names exist."""
    known, unknown = [], []
    for name in ("alice", "bob", "vera", "rita", "adam"):
        for names, who in ((known, name), (unknown, f"nobody-{uuid.uuid4().hex[:6]}")):
            started = time.perf_counter()
            answer = sign_in(served, who, "wrong", "127.0.0.5")
            names.append(time.perf_counter() - started)
            assert answer.status_code == 401
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2, f"unknown {statistics.median(unknown):.3f}s vs known {statistics.median(known):.3f}s"


def test_repeated_bursts_of_failures_back_off(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Once the short window is full the caller waits for it; once the longer one is, for the longer one."""
    with api_server(
        endpoints,
        tmp_path_factory.mktemp("backoff"),
        f"backoff-{uuid.uuid4().hex[:8]}.",
        TRADECORE_LOGIN_FAILURE_LIMIT="2 per 6 seconds;3/hour",
    ) as api:
        address = "127.0.0.6"
        assert [sign_in(api, "rita", "guess", address).status_code for _ in range(2)] == [401, 401]
        short = sign_in(api, "rita", "guess", address)
        assert short.status_code == 429
        assert int(short.headers["Retry-After"]) <= 6
        time.sleep(int(short.headers["Retry-After"]) + 0.2)
        assert sign_in(api, "rita", "guess", address).status_code == 401
        long = sign_in(api, "rita", "guess", address)
        assert long.status_code == 429
        assert int(long.headers["Retry-After"]) > 60
