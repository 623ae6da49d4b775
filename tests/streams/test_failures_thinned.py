"""A failure retried again and again is said once per key and interval, with a count of the attempts held back, and
every other message passes: while Postgres is down the pools try to reconnect every half second and the live feed
each second; a processor host's consumer reports the errors librdkafka retries."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from streams.host.fetch import Fetcher
from streams.host.transaction import StartOver
from streams.kafka import KafkaError
from streams.runtime.logs import FailuresThinned


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
    thinned = FailuresThinned("error connecting in", key_args=1, every_s=30.0, clock=clock)
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


def test_a_hosts_consumer_errors_are_said_once_per_member_and_kind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tradecore.streams")
    risk, venue = (SimpleNamespace(_member=f"{name}-{uuid.uuid4().hex[:6]}") for name in ("risk", "venue"))
    down = KafkaError(KafkaError._TRANSPORT, "127.0.0.1:9092/1: Connection refused (after 0ms in state CONNECT)")
    for _ in range(5):  # retried by librdkafka, reported each time
        Fetcher._failed(risk, down)  # type: ignore[arg-type]
        Fetcher._failed(venue, down)  # type: ignore[arg-type]
    Fetcher._failed(risk, KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))  # type: ignore[arg-type]

    said = [record.getMessage() for record in caplog.records if record.name == "tradecore.streams"]
    assert said == [
        f"{risk._member}: the consumer reports _TRANSPORT: {down.str()} (retrying)",
        f"{venue._member}: the consumer reports _TRANSPORT: {down.str()} (retrying)",
        f"{risk._member}: the consumer reports _ALL_BROKERS_DOWN: 1/1 brokers are down (retrying)",
    ]


def test_a_fatal_consumer_error_starts_the_host_over() -> None:
    fenced = KafkaError(KafkaError._FENCED, "the static member was fenced", fatal=True)
    with pytest.raises(StartOver, match="fenced"):
        Fetcher._failed(SimpleNamespace(_member="risk-0"), fenced)  # type: ignore[arg-type]
