"""The Postgres command store keeps the write side's contract (the same suite the in-memory store passes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from psycopg import AsyncConnection

from api import db
from api.store import _CLAIM, _RECORD, SCHEMA, PostgresCommandStore, claim_params, command_pool, record_params
from commands.gateway import Appended, Claim, CommandStore
from deploy.local.stack import Endpoints
from projections.settings import DatabaseSettings
from tests.support.contracts import CommandStoreContract, placement

pytestmark = pytest.mark.integration


class TestPostgresCommandStore(CommandStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, endpoints: Endpoints) -> None:
        db.upgrade(endpoints.database_url)
        self.url = endpoints.database_url
        self.namespace = f"test-{uuid.uuid4().hex[:10]}."  # rows of a namespace of the test's own

    def run(self, scenario: Callable[[CommandStore], Awaitable[Any]]) -> Any:
        async def inside_one_loop() -> Any:  # the pool's connections belong to the loop that made them
            async with command_pool(DatabaseSettings(url=self.url), max_size=2) as pool:
                return await scenario(PostgresCommandStore(pool, self.namespace))

        return asyncio.run(inside_one_loop())

    def test_placing_reads_the_batchs_own_rows_however_many_orders_the_namespace_holds(self) -> None:
        """A group commit's claims and records read its own rows of ``orders``, not its namespace's. The statistics
        are made stale as a new or grown namespace finds them: analyzed while the table held another namespace's
        3,000 orders and 300 namespaces of 5 (an average and a common value's share of a few rows), then 3,000 of
        this one's. Planned from them, the statements had walked this namespace's whole index range per batch (a core
        of Postgres at 800 orders/s in bench/order_entry.py); among the small namespaces, the record had walked it
        through the client-order-id key too, while that key led with the namespace."""
        account = self.account()
        earlier = [placement(account, f"earlier-{i}")[0] for i in range(3_000)]
        batch = [placement(account, f"batch-{i}")[0] for i in range(10)]

        async def reads(conn: AsyncConnection[Any]) -> int:
            """This backend's reads of the table not yet reported to the statistics: a running count."""
            cursor = await conn.execute(
                "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables"
                f" WHERE schemaname = '{SCHEMA}' AND relname = 'orders'"
            )
            row = await cursor.fetchone()
            assert row is not None
            return int(row[0])

        async def fill(store: CommandStore, claims: list[Claim]) -> None:
            for start in range(0, len(claims), 500):
                async with store.placing() as placing:
                    part = claims[start : start + 500]
                    await placing.claim_orders(part)
                    await placing.record_placed(
                        [(c.order.order_id, Appended("orders", 0, i)) for i, c in enumerate(part)]
                    )

        async def scenario() -> int:
            async with command_pool(DatabaseSettings(url=self.url), max_size=2) as pool:
                other = [placement(account, f"other-{i}")[0] for i in range(3_000)]
                await fill(PostgresCommandStore(pool, self.namespace + "other."), other)
                for n in range(300):
                    small = [placement(account, f"small-{i}")[0] for i in range(5)]
                    await fill(PostgresCommandStore(pool, f"{self.namespace}small-{n}."), small)
                async with pool.connection() as conn:
                    await conn.execute(f"ANALYZE {SCHEMA}.orders")
                await fill(PostgresCommandStore(pool, self.namespace), earlier)
                # A placement's two statements, in one transaction here so that their reads are counted together.
                async with pool.connection() as conn, conn.transaction():
                    before = await reads(conn)
                    cursor = await conn.execute(_CLAIM, claim_params(self.namespace, [*batch, earlier[0]]))
                    outcomes = [row[3] for row in await cursor.fetchall()]  # claimed: ten new, not the repeat
                    placed = [(c.order.order_id, Appended("orders", 1, i)) for i, c in enumerate(batch)]
                    await conn.execute(_RECORD, record_params(self.namespace, placed))
                    after = await reads(conn)
            assert sorted(outcomes) == [False] + [True] * 10
            return int(after - before)

        assert asyncio.run(scenario()) <= 2 * 11

    def test_a_connection_plans_the_placements_statements_once(self) -> None:
        """psycopg prepares the store's statements after a few uses; Postgres then runs them on one plan, not a plan
        made again for each group commit (the record's had been: as much Postgres CPU as running it)."""
        account = self.account()

        async def plans(conn: AsyncConnection[Any]) -> list[tuple[int, int]]:
            """(generic, custom) plans of the claim and the record prepared on ``conn``."""
            cursor = await conn.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            rows = await cursor.fetchall()
            marks = ("pg_advisory_lock(", "pg_advisory_unlock_all(")  # the claim's, the record's (as sent: $1, ...)
            return [(int(row[1]), int(row[2])) for row in rows if any(mark in str(row[0]) for mark in marks)]

        async def scenario() -> list[list[tuple[int, int]]]:
            async with command_pool(DatabaseSettings(url=self.url), max_size=2) as pool:
                store = PostgresCommandStore(pool, self.namespace)
                for i in range(30):
                    claim, _ = placement(account, f"once-{i}")
                    async with store.placing() as placing:
                        await placing.claim_orders([claim])
                        await placing.record_placed([(claim.order.order_id, Appended("orders", 0, i))])
                async with pool.connection() as first, pool.connection() as second:
                    return [await plans(first), await plans(second)]

        found = asyncio.run(scenario())
        assert [len(conn) for conn in found] == [2, 2], found  # both statements prepared on each connection
        assert all(generic > 0 and custom == 0 for conn in found for generic, custom in conn), found

    def test_a_unit_whose_connection_is_lost_after_numbering_keeps_its_numbers(self) -> None:
        """Kafka has acknowledged a cancel, then the unit's connection drops (Postgres restarted, a network cut): the
        cancel stands, and the next command on the order takes the next number. A unit that was a transaction lost its
        numbers with the commit that failed, and the next command's event took the cancel's id."""
        order = f"ORD-{uuid.uuid4().hex[:8]}"

        async def scenario() -> tuple[int, int]:
            async with command_pool(DatabaseSettings(url=self.url), max_size=2) as pool:
                store = PostgresCommandStore(pool, self.namespace)
                async with store.unit() as unit:
                    first = await unit.next_sequence("orders", order)
                    async with pool.connection() as other:  # the backend that holds the stream's lock
                        cursor = await other.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND ((classid::bigint << 32) | objid::bigint)"
                            " = hashtextextended(%s || chr(31) || 'orders' || chr(31) || %s, 0)",
                            (self.namespace, order),
                        )
                        assert await cursor.fetchall() == [(True,)]
                async with store.unit() as unit:
                    return first, await unit.next_sequence("orders", order)

        assert asyncio.run(scenario()) == (1, 2)

    def test_units_of_different_streams_do_not_wait_for_each_other(self) -> None:
        """Only a stream's own units wait for each other: a cancel on one order never waits for another order's."""
        orders = [f"ORD-{uuid.uuid4().hex[:8]}" for _ in range(2)]

        async def scenario() -> list[int]:
            async with command_pool(DatabaseSettings(url=self.url), max_size=2) as pool:
                store = PostgresCommandStore(pool, self.namespace)
                async with store.unit() as holding:
                    await holding.next_sequence("orders", orders[0])
                    async with store.unit() as other:
                        return [await asyncio.wait_for(other.next_sequence("orders", orders[1]), timeout=5)]

        assert asyncio.run(scenario()) == [1]
