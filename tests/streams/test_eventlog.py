"""The Kafka event log keeps the write side's contract (the same suite the in-memory log passes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from commands.gateway import EventLog
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams.eventlog import KafkaEventLog
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.contracts import EventLogContract

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
