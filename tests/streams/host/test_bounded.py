"""Live, what a host fetches ahead of its turn is bounded: an input whose records must wait (here ticks, behind an
orders partition held back by an open transaction) is paused once the host holds ``batch_max`` of its records, and
fetched again as they are taken — in the same deterministic order. Unbounded, a host taking a backlog of a million
records held 1.4 GB of ticks fetched ahead of the orders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from schemas.serde import EventSerializer
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_prompt import Checker, hosting, until_live, wait_for
from tests.support.events import OCCURRED_AT, envelope, order_placed, tick_ingested
from tests.support.log import append as append_all

pytestmark = pytest.mark.integration

BATCH_MAX = 50
TICKS = 1_000


@pytest.fixture
def hosted(topics: KafkaSettings, registry_settings: RegistrySettings) -> Iterator[tuple[ProcessorHost, Checker]]:
    with hosting(topics, registry_settings, HostConfig(batch_max=BATCH_MAX)) as hosted:
        yield hosted


def lag(processor: str, topic: str, partitions: int) -> float:
    """The host's consumer lag over ``topic``'s partitions, as its metrics report it."""
    labels = [{"processor": processor, "topic": topic, "partition": str(p)} for p in range(partitions)]
    return sum(REGISTRY.get_sample_value("tradecore_consumer_lag", label) or 0 for label in labels)


def test_ticks_waiting_behind_an_open_transaction_are_fetched_no_further_than_the_bound(
    hosted: tuple[ProcessorHost, Checker], topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    host, checker = hosted
    client = registry_client(registry_settings)
    until_live(topics, client, checker)

    # An order in a transaction left open: read_committed, its partition cannot be read to its end, so every later
    # tick must wait for it (the order may come first).
    order = order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1"))
    orders = EventSerializer(client, "orders", topic_prefix=topics.topic_prefix)
    writer = kafka.producer(topics, **{"transactional.id": f"{topics.topic_prefix}open-order"})
    writer.init_transactions(30)
    writer.begin_transaction()
    writer.produce(orders.topic, key=orders.key(order), value=orders.serialize(order), timestamp=event_time_ms(order))
    assert writer.flush(30) == 0
    # Once the host has fetched past it, it knows that partition's log goes on (its lag shows it): only then is it
    # held back, not merely quiet.
    assert wait_for(lambda: lag(checker.name, "orders", topics.partitions) >= 1, 60), "the host did not see the order"
    ticks = [
        tick_ingested(
            envelope=envelope(
                type(tick_ingested()), aggregate_id=f"tick-{i}", occurred_at=OCCURRED_AT + timedelta(seconds=i)
            )
        )
        for i in range(1, TICKS + 1)
    ]
    append_all(topics, client, ticks)
    # The host fetched ticks up to its bound and paused them there, taking none.
    assert wait_for(lambda: host.stats.held_max >= BATCH_MAX, 60), host.stats.held_max
    assert not wait_for(lambda: host.stats.held_max > 2 * BATCH_MAX, 5), host.stats.held_max
    assert checker.seen == ["ticks:tick-live"]

    writer.commit_transaction(30)
    # Then everything, in event-time order, the ticks fetched again as they were taken.
    expected = ["ticks:tick-live", "orders:order-1", *(f"ticks:tick-{i}" for i in range(1, TICKS + 1))]
    assert wait_for(lambda: len(checker.seen) == len(expected), 60), len(checker.seen)
    assert checker.seen == expected
    # A batch's fetch may land on top of the bound before the pause takes effect, never more.
    assert host.stats.held_max <= 2 * BATCH_MAX, host.stats.held_max
