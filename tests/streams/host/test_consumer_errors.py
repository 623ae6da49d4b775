"""An error a consumer hands over instead of a record is not dropped unseen: a fatal one (the client is of no further
use — a static member fenced, say) starts the host over with new clients; a passing one is logged, once a minute per
kind at most, and fetching goes on."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from streams.host.fetch import Fetcher
from streams.host.transaction import StartOver


class Handed:
    """A consumer message carrying an error, as librdkafka hands one over."""

    def __init__(self, error: KafkaError) -> None:
        self._error = error

    def error(self) -> KafkaError:
        return self._error

    def topic(self) -> str:
        return "orders"


class Handing:
    """A group consumer that hands over the given messages on each consume."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return self.messages


def test_a_fatal_consumer_error_starts_the_host_over(fetcher: Fetcher) -> None:
    fenced = KafkaError(KafkaError.FENCED_INSTANCE_ID, "fenced by another member", fatal=True)
    fetcher.group = Handing([Handed(fenced)])
    with pytest.raises(StartOver, match=r"the consumer failed: .*fenced by another member"):
        fetcher.fetch(0)


def test_a_passing_consumer_error_is_logged_once_a_minute_and_fetching_goes_on(
    fetcher: Fetcher, caplog: pytest.LogCaptureFixture
) -> None:
    down = KafkaError(KafkaError._TRANSPORT, "broker transport failure")
    fetcher.group = Handing([Handed(down), Handed(down)])
    with caplog.at_level(logging.WARNING, logger="tradecore.streams"):
        assert fetcher.fetch(0) == []
        assert fetcher.fetch(0) == []
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "broker transport failure" in said[0] and "retrying" in said[0], said


def test_a_partition_whose_end_cannot_be_learnt_counts_as_maybe_unread_and_ends_the_look(
    fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watchdog's question — does anything wait unread? — is not answered "no" by brokers that cannot say."""
    monkeypatch.setattr("streams.host.fetch._ASK_S", 0.2)
    fetcher._assigned(fetcher.group, [TopicPartition("orders", p) for p in range(6)])
    [unknown] = fetcher.unfetched()  # (the first is enough: each ask would wait out its timeout)
    assert unknown.startswith("orders[0]: end unknown ("), unknown
