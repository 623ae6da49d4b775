"""The Postgres command store keeps the write side's contract (the same suite the in-memory store passes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from api import db
from api.store import SCHEMA, PostgresCommandStore, _Unit
from commands.gateway import Appended, CommandStore
from deploy.local.stack import Endpoints
from tests.support.contracts import CommandStoreContract, placement

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

    def test_placing_reads_the_batchs_own_rows_however_many_orders_the_namespace_holds(self) -> None:
        """A group commit's claims and records read its own rows of ``orders``, not its namespace's: with 3,000 orders
        in a namespace the table's statistics do not know yet (every new namespace, and one grown since the last
        analyze), the statements had walked the namespace's whole index range per batch — a core of Postgres at 800
        orders/s."""
        account = self.account()
        earlier = [placement(account, f"earlier-{i}")[0] for i in range(3_000)]
        batch = [placement(account, f"batch-{i}")[0] for i in range(10)]
        reads = text(  # this backend's reads of the table not yet reported to the statistics: a running count
            "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables"
            f" WHERE schemaname = '{SCHEMA}' AND relname = 'orders'"
        )

        async def scenario(store: CommandStore) -> int:
            for start in range(0, len(earlier), 100):
                async with store.unit() as unit:
                    part = earlier[start : start + 100]
                    await unit.claim_orders(part)
                    await unit.record_placed([(c.order.order_id, Appended("orders", 0, i)) for i, c in enumerate(part)])
            async with store.unit() as unit:
                assert isinstance(unit, _Unit)
                before = (await unit._conn.execute(reads)).scalar_one()
                outcomes = await unit.claim_orders([*batch, earlier[0]])  # ten new and a repeat
                await unit.record_placed([(c.order.order_id, Appended("orders", 1, i)) for i, c in enumerate(batch)])
                after = (await unit._conn.execute(reads)).scalar_one()
            assert [outcome is None for outcome in outcomes] == [True] * 10 + [False]
            return int(after - before)

        assert self.run(scenario) <= 2 * 11
