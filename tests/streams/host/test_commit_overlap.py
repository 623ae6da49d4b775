"""While the broker commits a batch the host takes what comes meanwhile: a slow commit delays when the next orders'
decisions become visible, not when they are decided; they are committed once, in the next transaction.

Here the first commit of an order's offset waits until the test lets it go — as a commit on a busy broker takes its
time — on a real producer against the real broker; everything else is the host's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.settings import RegistrySettings
from streams.host.runner import HostConfig
from streams.kafka import clients, transactions
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import append
from tests.streams.host.test_prompt import hosting, until_live, wait_for
from tests.streams.host.test_stall import checked_keys
from tests.support.events import envelope, order_placed

pytestmark = pytest.mark.integration


class _SlowOnOrders:
    """A real transactional producer whose first ``send_offsets_to_transaction`` holding an ``orders`` offset waits
    until ``released``."""

    def __init__(self, real: Producer, released: threading.Event, slowed: list[str]) -> None:
        self._real = real
        self._released = released
        self._slowed = slowed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_offsets_to_transaction(self, positions: list[Any], *args: Any) -> None:
        if not self._slowed and any(p.topic.endswith(".orders") for p in positions):
            self._slowed.append(str(positions))
            self._released.wait()
        self._real.send_offsets_to_transaction(positions, *args)


@pytest.fixture
def slow_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """The producers the host makes, the first of them slow as above; the event that lets it go on, and what it
    was committing."""
    released, slowed = threading.Event(), list[str]()

    def producer(settings: KafkaSettings, **overrides: Any) -> Any:
        real = clients.producer(settings, **overrides)
        return real if slowed else _SlowOnOrders(real, released, slowed)

    monkeypatch.setattr(transactions, "producer", producer)
    yield released, slowed
    released.set()


def test_orders_that_come_during_a_slow_commit_are_decided_meanwhile_and_committed_once(
    topics: KafkaSettings, registry_settings: RegistrySettings, slow_once: tuple[threading.Event, list[str]]
) -> None:
    released, slowed = slow_once
    client = registry_client(registry_settings)
    with hosting(topics, registry_settings, HostConfig()) as (host, checker):
        until_live(topics, client, checker)
        append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1")))
        assert wait_for(lambda: bool(slowed), 60), "the order's offset was never committed"

        append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-2")))
        assert wait_for(lambda: "orders:order-2" in checker.seen, 30), "the host waited for the commit to return"
        assert checked_keys(topics, registry_settings) == []  # neither is visible before its commit returns

        released.set()
        assert wait_for(lambda: sorted(checked_keys(topics, registry_settings)) == ["order-1", "order-2"], 60), (
            checked_keys(topics, registry_settings)
        )
        assert host.stats.restarts == 0
