"""The Kafka event log keeps the write side's contract (the same suite the in-memory log passes)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from commands.gateway import EventLog
from schemas.batch import BatchEncoder
from schemas.batch.registry import schema_id
from schemas.events import TickIngested
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.errors import AppendFailed
from streams.eventlog import KafkaEventLog
from streams.host.processor import event_time_ms
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.settings import KafkaSettings
from tests.support.contracts import EventLogContract, recorded_ticks, tick_frame

pytestmark = pytest.mark.integration


class TestKafkaEventLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _kafka(self, topics: KafkaSettings, registry_settings: RegistrySettings) -> None:
        self.settings = topics
        self.prefix = topics.topic_prefix
        self.registry = registry_client(registry_settings)
        register_all(self.registry, self.prefix)

    def run(self, scenario: Callable[[EventLog], Awaitable[Any]]) -> Any:
        log = KafkaEventLog(self.settings, self.registry)
        try:
            return asyncio.run(scenario(log))
        finally:
            assert log.close() == 0


def test_a_load_kafka_cannot_take_fails_naming_the_topic_and_the_next_load_goes_through(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    """The loader reports failures only: one must still fail the load it belongs to, and not the next."""
    registry = registry_client(registry_settings)
    missing = topics.model_copy(update={"topic_prefix": f"{topics.topic_prefix}missing.", "append_timeout_ms": 3000})
    register_all(registry, missing.topic_prefix)  # schemas, but no topics: the broker creates none on its own
    ticks = tick_frame(recorded_ticks(3))

    async def load(log: KafkaEventLog) -> None:
        async with log.load(TickIngested) as send:
            await send(lambda: ticks)

    async def scenario() -> None:
        log = KafkaEventLog(missing, registry, loads=True)
        try:
            with pytest.raises(AppendFailed, match=f"{missing.topic_prefix}ticks"):
                await load(log)
            client = kafka.admin(missing)
            ensure_topics(
                client, TopicLayout.for_cluster(cluster_size(client), missing.partitions), missing.topic_prefix
            )
            await load(log)
        finally:
            assert log.close() == 0

    asyncio.run(scenario())


def test_a_load_writes_each_tick_as_its_encoding_keyed_by_instrument_at_its_event_time_in_row_order(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    """The records of a load, as a consumer sees them: the batch codec's value, the instrument as key, the event
    time as the record's timestamp, in the frame's row order."""
    registry = registry_client(registry_settings)
    register_all(registry, topics.topic_prefix)
    ticks = recorded_ticks(5)  # of one instrument: one partition, in offset order
    frame = tick_frame(ticks)

    async def scenario() -> None:
        log = KafkaEventLog(topics, registry, loads=True)
        try:
            async with log.load(TickIngested) as send:
                await send(lambda: frame.head(2))
                await send(lambda: frame.tail(3))
        finally:
            assert log.close() == 0

    asyncio.run(scenario())
    encoder = BatchEncoder(TickIngested, schema_id(registry, TickIngested, topic_prefix=topics.topic_prefix))
    values = encoder.encode(frame)
    expected = [(b"BTCUSDT", event_time_ms(tick), value) for tick, value in zip(ticks, values, strict=True)]
    assert records(topics, topics.topic_prefix + "ticks", len(expected)) == expected


def records(settings: KafkaSettings, topic: str, count: int) -> list[tuple[bytes | None, int, bytes | None]]:
    """The first ``count`` records of ``topic`` as (key, timestamp, value), partition by partition."""
    consumer = kafka.consumer(settings, f"test-{uuid.uuid4().hex}")
    try:
        consumer.assign([kafka.TopicPartition(topic, p, kafka.OFFSET_BEGINNING) for p in range(settings.partitions)])
        found: list[tuple[bytes | None, int, bytes | None]] = []
        deadline = time.monotonic() + 30
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found.append((msg.key(), msg.timestamp()[1], msg.value()))
        return found
    finally:
        consumer.close()
