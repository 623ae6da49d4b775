"""While Postgres is down the pools try to reconnect every half second, the live feed each second: the log says so
once per pool (or loop) and interval, with a count of the attempts it held back, and lets every other message
through."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from projections.db import FailuresThinned


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool_log(clock: Clock, caplog: pytest.LogCaptureFixture) -> Iterator[logging.Logger]:
    log = logging.getLogger("test-pool-logs")
    thinned = FailuresThinned("error connecting in", by_first_arg=True, every_s=30.0, clock=clock)
    log.addFilter(thinned)
    caplog.set_level(logging.INFO, logger="test-pool-logs")
    yield log
    log.removeFilter(thinned)


def failed(log: logging.Logger, pool: str) -> None:
    log.warning("error connecting in %r: %s", pool, "connection refused")


def test_each_pool_says_its_first_failure_then_one_each_interval_with_the_count_held_back(
    pool_log: logging.Logger, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for second in range(10):  # two attempts a second, for ten seconds
        clock.now = float(second)
        failed(pool_log, "command-store")
        failed(pool_log, "command-store")
    failed(pool_log, "read-models")  # another pool: its own first
    clock.now = 31.0
    failed(pool_log, "command-store")

    said = [record.getMessage() for record in caplog.records]
    assert said == [
        "error connecting in 'command-store': connection refused",
        "error connecting in 'read-models': connection refused",
        "error connecting in 'command-store': connection refused (19 more failed attempts in the last 31 s not shown)",
    ]


def test_other_messages_pass_untouched(
    pool_log: logging.Logger, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    failed(pool_log, "command-store")
    failed(pool_log, "command-store")
    pool_log.warning("discarding closed connection: %s", "<conn>")
    pool_log.warning("discarding closed connection: %s", "<conn>")

    assert [record.getMessage() for record in caplog.records] == [
        "error connecting in 'command-store': connection refused",
        "discarding closed connection: <conn>",
        "discarding closed connection: <conn>",
    ]


def test_a_loop_of_its_own_is_one_key_whatever_its_errors_say(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test-loop-logs")
    thinned = FailuresThinned("live feed: listening failed", every_s=30.0, clock=clock)
    log.addFilter(thinned)
    caplog.set_level(logging.INFO, logger="test-loop-logs")
    try:
        for second in range(40):
            clock.now = float(second)
            log.warning("live feed: listening failed (%s); again in 1 s", f"attempt {second}")
    finally:
        log.removeFilter(thinned)

    assert [record.getMessage() for record in caplog.records] == [
        "live feed: listening failed (attempt 0); again in 1 s",
        "live feed: listening failed (attempt 30); again in 1 s (29 more failed attempts in the last 30 s not shown)",
    ]
