"""The Kafka event log keeps the write side's contract (the same suite the in-memory log passes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from commands.gateway import EventLog
from schemas.events import TickIngested
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.eventlog import AppendFailed, KafkaEventLog
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

    async def scenario() -> int:
        log = KafkaEventLog(missing, registry, loads=True)
        try:
            with pytest.raises(AppendFailed, match=f"{missing.topic_prefix}ticks"):
                await log.load_frame(TickIngested, ticks)
            client = kafka.admin(missing)
            ensure_topics(
                client, TopicLayout.for_cluster(cluster_size(client), missing.partitions), missing.topic_prefix
            )
            return await log.load_frame(TickIngested, ticks)
        finally:
            assert log.close() == 0

    assert asyncio.run(scenario()) == 3
