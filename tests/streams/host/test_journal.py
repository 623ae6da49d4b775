"""A rebuild folds the inputs in the order live processing took them, even where that was not event-time order."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta

import pytest

from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import Output, event_time_ms
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.events import OCCURRED_AT, envelope, order_accepted, tick_ingested

pytestmark = pytest.mark.integration


class Recorder:
    """A processor with the venue's inputs that remembers what it was given, in order (its whole state)."""

    name = "execution"
    partitioned: tuple[str, ...] = ("orders.checked", "ticks")
    broadcast: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        self.seen.append(f"{topic}:{event.envelope.aggregate_id}")
        return ()

    def reset(self) -> None:
        self.seen = []


def append(settings: KafkaSettings, client: SchemaRegistry, event: Event) -> None:
    topic = event.route().topic
    serializer = EventSerializer(client, topic, topic_prefix=settings.topic_prefix)
    producer = kafka.producer(settings)
    producer.produce(
        serializer.topic, key=serializer.key(event), value=serializer.serialize(event), timestamp=event_time_ms(event)
    )
    assert producer.flush(30) == 0


def run_until(host: ProcessorHost, processor: Recorder, seen: int, timeout_s: float = 60) -> None:
    """Host ``processor`` until it has handled ``seen`` records and committed them, then stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + timeout_s
    while len(processor.seen) < seen and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(60)
    assert len(processor.seen) >= seen, processor.seen


def test_a_rebuild_follows_the_order_taken_live_not_event_time(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    config = HostConfig(grace_ms=200, batch_ms=50)
    first = Recorder()
    host = ProcessorHost(first, topics, client, config)

    # Live: a quote, then — after the venue has gone on without the orders input — an order stamped *before* it
    # (an upstream processor catching up). Event-time order would put the order first; live could not.
    def live() -> None:
        append(topics, client, tick_ingested(envelope=envelope(type(tick_ingested()), aggregate_id="tick-1")))
        time.sleep(1.5)  # well past the grace period: the quote is taken alone
        late = order_accepted(
            envelope=envelope(
                type(order_accepted()), aggregate_id="order-1", occurred_at=OCCURRED_AT - timedelta(seconds=5)
            )
        )
        append(topics, client, late)

    feeder = threading.Thread(target=live)
    feeder.start()
    run_until(host, first, seen=2)
    feeder.join()
    assert first.seen == ["ticks:tick-1", "orders.checked:order-1"]

    # A new incarnation (after a crash, or a rebalance) rebuilds from the log: the same order as live.
    second = Recorder()
    rebuilt = ProcessorHost(second, topics, client, config)
    run_until(rebuilt, second, seen=2)
    assert second.seen == first.seen
    assert rebuilt.stats.replayed == 2
