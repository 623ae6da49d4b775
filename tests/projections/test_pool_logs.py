"""While Postgres is down the pools try to reconnect every half second: the log says so once per pool and interval,
with a count of the attempts it held back, and lets every other message through."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from projections.db import ConnectFailuresThinned


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
    thinned = ConnectFailuresThinned(every_s=30.0, clock=clock)
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
