"""A commit that never comes back — librdkafka's ``send_offsets_to_transaction`` ignoring its timeout once the group
coordinator's broker is gone (confluentinc/librdkafka#5456, #5511) — is given up on after ``SETTLE_S``: the host
starts over with a new producer, which fences the stuck one, and the waiting order is decided, once.

tests/deploy/test_broker_loss.py saw risk's host blocked in that call for minutes after a broker was killed, taking
nothing. Here the first call that commits an order's offset blocks until the test ends, on a real producer against
the real broker; everything else is the host's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.settings import RegistrySettings
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka import clients, transactions
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import append
from tests.streams.host.test_prompt import Checker, hosting, until_live, wait_for
from tests.streams.host.test_stall import checked_keys
from tests.support.events import envelope, order_placed

pytestmark = pytest.mark.integration

SETTLE_S = 3


class _StuckOnOrders:
    """A real transactional producer whose first ``send_offsets_to_transaction`` holding an ``orders`` offset does
    not return until ``released``."""

    def __init__(self, real: Producer, released: threading.Event, stuck: list[str]) -> None:
        self._real = real
        self._released = released
        self._stuck = stuck

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_offsets_to_transaction(self, positions: list[Any], *args: Any) -> None:
        if not self._stuck and any(p.topic.endswith(".orders") for p in positions):
            self._stuck.append(str(positions))
            self._released.wait()
        self._real.send_offsets_to_transaction(positions, *args)


@pytest.fixture
def stuck_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The producers the host makes, the first of them stuck as above; what it was stuck committing."""
    released, stuck = threading.Event(), list[str]()

    def producer(settings: KafkaSettings, **overrides: Any) -> Any:
        real = clients.producer(settings, **overrides)
        return real if stuck else _StuckOnOrders(real, released, stuck)

    monkeypatch.setattr(transactions, "producer", producer)
    monkeypatch.setattr(transactions, "SETTLE_S", SETTLE_S)
    yield stuck
    released.set()


@pytest.fixture
def hosted(
    topics: KafkaSettings, registry_settings: RegistrySettings, stuck_once: list[str]
) -> Iterator[tuple[ProcessorHost, Checker]]:
    with hosting(topics, registry_settings, HostConfig()) as hosted:
        yield hosted


def test_a_commit_that_never_comes_back_is_given_up_on_and_the_order_decided_once(
    hosted: tuple[ProcessorHost, Checker],
    topics: KafkaSettings,
    registry_settings: RegistrySettings,
    stuck_once: list[str],
) -> None:
    host, checker = hosted
    client = registry_client(registry_settings)
    until_live(topics, client, checker)

    append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1")))
    assert wait_for(lambda: bool(stuck_once), 60), "the order's offset was never committed"
    assert host.stats.restarts == 0
    assert wait_for(lambda: host.stats.restarts == 1, SETTLE_S + 30), "the host stayed in the stuck commit"
    # The new session took the order again (its first transaction was never committed) and committed it once; the
    # stuck producer's open transaction, holding the first decision, was fenced and aborted.
    assert wait_for(lambda: checked_keys(topics, registry_settings) == ["order-1"], 60), checked_keys(
        topics, registry_settings
    )
    assert host.stats.restarts == 1
