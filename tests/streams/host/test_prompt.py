"""Live, a record's outputs become visible as soon as the host has handled it: a quiet input does not hold it back
for a grace period, and an idle batch commits without waiting for ``batch_ms``.

Functional properties with generous bounds (seconds against a grace period and a batch interval of 30 s), not a
performance measurement: bench/processors.py measures latency.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from confluent_kafka import TopicPartition

from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import Forward, Output
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import append
from tests.support.events import envelope, order_placed, tick_ingested

pytestmark = pytest.mark.integration

LONG_MS = 30_000  # the grace period of partitioned inputs and the batch interval: never waited out here
PROMPT_S = 10.0  # what "at once" is allowed on a loaded machine, well below LONG_MS


class Checker:
    """Orders beside broadcast ticks; passes each order on to ``orders.checked`` and remembers what it was given."""

    name = "risk"  # its journal topic exists in every namespace
    partitioned: tuple[str, ...] = ("orders",)
    broadcast: tuple[str, ...] = ("ticks",)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        self.seen.append(f"{topic}:{event.envelope.aggregate_id}")
        return [Forward("orders.checked", event.envelope.aggregate_id)] if topic == "orders" else []

    def reset(self) -> None:
        self.seen = []


@contextlib.contextmanager
def hosting(
    topics: KafkaSettings, registry_settings: RegistrySettings, config: HostConfig, checker: Checker | None = None
) -> Iterator[tuple[ProcessorHost, Checker]]:
    """``checker`` (a new ``Checker`` if none) hosted under ``config`` in a thread of this process, then stopped."""
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    checker = checker or Checker()
    host = ProcessorHost(checker, topics, client, config)
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    try:
        yield host, checker
    finally:
        stop.set()
        thread.join(60)


@pytest.fixture
def hosted(topics: KafkaSettings, registry_settings: RegistrySettings) -> Iterator[tuple[ProcessorHost, Checker]]:
    with hosting(topics, registry_settings, HostConfig(batch_ms=LONG_MS, grace_ms=LONG_MS)) as hosted:
        yield hosted


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def until_live(topics: KafkaSettings, client: SchemaRegistry, checker: Checker) -> None:
    """Append a tick and wait until the host took it: its group joined and its state rebuilt."""
    append(topics, client, tick_ingested(envelope=envelope(type(tick_ingested()), aggregate_id="tick-live")))
    assert wait_for(lambda: checker.seen == ["ticks:tick-live"], 120), checker.seen


def test_an_order_is_decided_and_committed_at_once_while_the_other_inputs_are_quiet(
    hosted: tuple[ProcessorHost, Checker], topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    host, checker = hosted
    client = registry_client(registry_settings)
    until_live(topics, client, checker)
    assert wait_for(lambda: host.stats.commits >= 1, PROMPT_S), "an idle batch waited for batch_ms"

    # The ticks (broadcast) and the other orders partitions stay quiet: the order's is the only one with anything to
    # give. Neither is waited for: ticks have no grace period, other partitions hold other accounts.
    placed = time.monotonic()
    order = order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1"))
    append(topics, client, order)
    assert wait_for(lambda: "orders:order-1" in checker.seen, PROMPT_S), "the order waited for a quiet input"

    # Visible to read_committed, and its offset committed, long before batch_ms.
    reader = kafka.consumer(topics, f"{topics.topic_prefix}prompt-reader")
    try:
        out = topics.topic_prefix + "orders.checked"
        partitions = reader.list_topics(out, timeout=30).topics[out].partitions
        reader.assign([TopicPartition(out, p, 0) for p in partitions])
        visible: list[bytes | None] = []
        deadline = placed + PROMPT_S
        while not visible and time.monotonic() < deadline:
            visible = [m.key() for m in reader.consume(10, 0.2) if m.error() is None]
        assert visible == [b"order-1"]
        source = topics.topic_prefix + "orders"
        sources = reader.list_topics(source, timeout=30).topics[source].partitions
    finally:
        reader.close()
    group = kafka.consumer(topics, host.group)  # not subscribed: only asks for the host's committed offsets
    try:
        committed = group.committed([TopicPartition(source, p) for p in sources], timeout=30)
    finally:
        group.close()
    assert sum(max(c.offset, 0) for c in committed) == 1
    assert time.monotonic() - placed < LONG_MS / 1000 / 2
