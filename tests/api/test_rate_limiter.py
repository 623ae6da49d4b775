"""The rate limiters' counters: the limit holds per key, and counting does not start a thread per request (the
API's event loop waited for each to start)."""

from __future__ import annotations

import threading
import time

import pytest

from api.errors import RateLimited
from api.ratelimit import RateLimiter


def test_the_sixth_hit_in_a_window_is_refused_for_that_key_only() -> None:
    # Per day: the counter's windows are aligned to the clock, and a burst across a boundary may pass a sixth.
    limiter = RateLimiter("5/day", "account")
    for _ in range(5):
        limiter.hit("ACC-1")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("ACC-1")
    assert refused.value.retry_after_s >= 1
    assert "account ACC-1 is over its limit of 5 per 1 day" in str(refused.value)
    limiter.hit("ACC-2")  # another account is not affected


@pytest.mark.parametrize("exact", [False, True])
def test_requests_spread_over_time_start_at_most_one_thread(monkeypatch: pytest.MonkeyPatch, exact: bool) -> None:
    limiter = RateLimiter("1000/second", "account", exact=exact)
    time.sleep(0.05)  # the storage's first sweep, started with it, has run
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(10):  # 15 ms apart: limits' own storage starts a sweep thread for each of them
        limiter.hit("ACC-1")
        time.sleep(0.015)
    assert len(started) <= 1
