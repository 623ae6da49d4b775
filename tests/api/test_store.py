"""The Postgres command store keeps the write side's contract (the same suite the in-memory store passes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from api import db
from api.store import PostgresCommandStore
from commands.gateway import CommandStore
from deploy.local.stack import Endpoints
from tests.support.contracts import CommandStoreContract

pytestmark = pytest.mark.integration


class TestPostgresCommandStore(CommandStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, endpoints: Endpoints) -> None:
        db.upgrade(endpoints.database_url)
        self.url = endpoints.database_url
        self.namespace = f"test-{uuid.uuid4().hex[:10]}."  # rows of a namespace of the test's own

    def run(self, scenario: Callable[[CommandStore], Awaitable[Any]]) -> Any:
        async def inside_one_loop() -> Any:  # the async engine's connections belong to the loop that made them
            engine = db.async_engine(self.url, pool_size=2)
            try:
                return await scenario(PostgresCommandStore(engine, self.namespace))
            finally:
                await engine.dispose()

        return asyncio.run(inside_one_loop())
