"""The in-memory command store and event log keep the contracts the Postgres store and the Kafka log keep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from commands.gateway import CommandStore, EventLog
from tests.support.contracts import CommandStoreContract, EventLogContract
from tests.support.memory import MemoryCommandStore, MemoryEventLog


class TestMemoryCommandStore(CommandStoreContract):
    def run(self, scenario: Callable[[CommandStore], Awaitable[Any]]) -> Any:
        return asyncio.run(scenario(MemoryCommandStore()))


class TestMemoryEventLog(EventLogContract):
    prefix = "test-memory."

    def run(self, scenario: Callable[[EventLog], Awaitable[Any]]) -> Any:
        return asyncio.run(scenario(MemoryEventLog(topic_prefix=self.prefix)))
