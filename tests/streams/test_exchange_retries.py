"""Calls an exchange failed transiently are retried with backoff (never sooner than its Retry-After) until they
succeed or the caller stops; any other failure is raised at once. No stack needed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import ccxt
import pytest

from streams.exchanges import Backoff, attempts, attempts_async


class Flaky:
    """An exchange client whose call fails with ``errors`` in turn, then answers; it asks to wait ``retry_after``."""

    def __init__(self, *errors: Exception, retry_after: str | None = None) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.last_response_headers = {"Retry-After": retry_after} if retry_after else {}

    def fetch(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def call(client: Flaky, stop: threading.Event, retried: list[tuple[str, float]]) -> Any:
    for attempt in attempts(client, Backoff(first_s=0.01, max_s=0.04), stop, lambda e, d: retried.append((str(e), d))):
        with attempt:
            return client.fetch()
    return None


def test_transient_failures_are_retried_with_growing_delays_until_the_call_succeeds() -> None:
    client, retried = Flaky(*(ccxt.NetworkError(f"down {i}") for i in range(4))), []

    assert call(client, threading.Event(), retried) == "answer"

    assert client.calls == 5
    assert [why for why, _ in retried] == [f"down {i}" for i in range(4)]
    # Each delay lies in the upper half of first_s doubling per attempt, capped at max_s.
    for (_, delay), ceiling in zip(retried, (0.01, 0.02, 0.04, 0.04), strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_a_retry_waits_at_least_the_exchanges_retry_after() -> None:
    client, retried = Flaky(ccxt.RateLimitExceeded("429"), retry_after="0.3"), []

    assert call(client, threading.Event(), retried) == "answer"

    assert retried == [("429", 0.3)]


def test_any_other_failure_is_raised_at_once() -> None:
    client = Flaky(ccxt.AuthenticationError("bad key"))

    with pytest.raises(ccxt.AuthenticationError, match="bad key"):
        call(client, threading.Event(), [])
    assert client.calls == 1


def test_a_stopped_caller_makes_no_further_attempt_and_gets_nothing() -> None:
    stop = threading.Event()
    client = Flaky(*(ccxt.NetworkError("down") for _ in range(100)))
    retried: list[tuple[str, float]] = []
    threading.Timer(0.2, stop.set).start()

    assert call(client, stop, retried) is None

    assert 1 < client.calls < 100  # retried while running, not after the stop
    already = Flaky()
    assert call(already, stop, []) is None and already.calls == 0  # stopped before the first attempt


def test_asyncio_callers_retry_alike_and_stop_early() -> None:
    async def run() -> tuple[Any, int]:
        client, stop = Flaky(ccxt.RequestTimeout("slow"), ccxt.NetworkError("down")), asyncio.Event()
        async for attempt in attempts_async(client, Backoff(first_s=0.01, max_s=0.02), stop, lambda e, d: None):
            with attempt:
                return client.fetch(), client.calls
        return None, client.calls

    assert asyncio.run(run()) == ("answer", 3)
