"""The per-request rate limiter counts on the API's event loop: the limit holds per key, and no request waits for a
thread to start (the thread-safe storage of ``limits`` started one to expire its counters nearly every order)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from api.errors import RateLimited
from api.ratelimit import RateLimiter


def test_the_sixth_hit_in_a_minute_is_refused_for_that_key_only() -> None:
    async def run() -> None:
        limiter = RateLimiter("5/minute", "account")
        for _ in range(5):
            await limiter.hit("ACC-1")
        with pytest.raises(RateLimited) as refused:
            await limiter.hit("ACC-1")
        assert refused.value.retry_after_s >= 1
        assert "account ACC-1 is over its limit of 5 per 1 minute" in str(refused.value)
        await limiter.hit("ACC-2")  # another account is not affected

    asyncio.run(run())


def test_requests_spread_over_time_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)

    async def run() -> None:
        limiter = RateLimiter("1000/second", "account")
        for _ in range(10):  # 15 ms apart: the thread-safe storage's expiry thread (10 ms) ends between them
            await limiter.hit("ACC-1")
            await asyncio.sleep(0.015)

    asyncio.run(run())
    assert started == []
