"""The write side's own Postgres tables (schema ``command_side``): which orders exist and who owns them, the
per-aggregate sequence counters, and stored Idempotency-Key outcomes. Kafka stays the record of *what happened*;
these tables only make commands idempotent, ordered and authorizable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.errors import IdempotencyKeyReused
from commands.gateway import Appended, ClientOrderIdReused, Placed
from commands.refs import OrderRef
from schemas.events import OrderType

SCHEMA = "command_side"
metadata = MetaData(schema=SCHEMA)

orders = Table(
    "orders",
    metadata,
    Column("namespace", String, primary_key=True),
    Column("order_id", String, primary_key=True),
    Column("account_id", String, nullable=False),
    Column("client_order_id", String, nullable=False),
    Column("instrument", String, nullable=False),
    Column("order_type", String, nullable=False),
    Column("request_hash", String, nullable=False),
    Column("topic", String),
    Column("partition", Integer),
    Column("offset", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("namespace", "account_id", "client_order_id", name="orders_client_order_id_per_account"),
)

stream_sequences = Table(
    "stream_sequences",
    metadata,
    Column("namespace", String, nullable=False),
    Column("topic", String, nullable=False),
    Column("aggregate_id", String, nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "topic", "aggregate_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("namespace", String, nullable=False),
    Column("principal", String, nullable=False),
    Column("key", String, nullable=False),
    Column("request_hash", String, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("namespace", "principal", "key"),
)


class _Unit:
    def __init__(self, conn: AsyncConnection, namespace: str) -> None:
        self._conn = conn
        self._ns = namespace

    async def claim_order(self, order: OrderRef, client_order_id: str, request_hash: str) -> Placed | None:
        # A concurrent claim of the same order waits here on the unique index until the first one ends.
        claimed = await self._conn.execute(
            insert(orders)
            .values(
                namespace=self._ns,
                order_id=order.order_id,
                account_id=order.account_id,
                client_order_id=client_order_id,
                instrument=order.instrument,
                order_type=order.order_type.value,
                request_hash=request_hash,
            )
            .on_conflict_do_nothing()
            .returning(orders.c.order_id)
        )
        if claimed.first() is not None:
            await self._conn.execute(
                insert(stream_sequences).values(
                    namespace=self._ns, topic="orders", aggregate_id=order.order_id, last_sequence=1
                )
            )
            return None
        earlier = (
            await self._conn.execute(
                select(orders).where(
                    orders.c.namespace == self._ns,
                    orders.c.account_id == order.account_id,
                    orders.c.client_order_id == client_order_id,
                )
            )
        ).one()
        if earlier.request_hash != request_hash:
            raise ClientOrderIdReused(
                f"client_order_id {client_order_id} of account {order.account_id} was used for another order "
                f"({earlier.order_id})"
            )
        return Placed(earlier.order_id, Appended(earlier.topic, earlier.partition, earlier.offset), repeated=True)

    async def record_placed(self, order_id: str, appended: Appended) -> None:
        await self._conn.execute(
            orders.update()
            .where(orders.c.namespace == self._ns, orders.c.order_id == order_id)
            .values(topic=appended.topic, partition=appended.partition, offset=appended.offset)
        )

    async def order(self, order_id: str) -> OrderRef | None:
        row = (
            await self._conn.execute(
                select(orders.c.order_id, orders.c.account_id, orders.c.instrument, orders.c.order_type)
                .where(orders.c.namespace == self._ns, orders.c.order_id == order_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        return OrderRef(row.order_id, row.account_id, row.instrument, OrderType(row.order_type))

    async def next_sequence(self, topic: str, aggregate_id: str, count: int = 1) -> int:
        add = insert(stream_sequences).values(
            namespace=self._ns, topic=topic, aggregate_id=aggregate_id, last_sequence=count
        )
        bump = add.on_conflict_do_update(
            index_elements=["namespace", "topic", "aggregate_id"],
            set_={"last_sequence": stream_sequences.c.last_sequence + add.excluded.last_sequence},
        ).returning(stream_sequences.c.last_sequence)
        last: int = (await self._conn.execute(bump)).scalar_one()
        return last - count + 1


class PostgresCommandStore:
    """``commands.gateway.CommandStore`` on Postgres: one transaction per unit, rows of one topic namespace."""

    def __init__(self, engine: AsyncEngine, namespace: str) -> None:
        self._engine = engine
        self._namespace = namespace

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[_Unit]:
        async with self._engine.begin() as conn:
            yield _Unit(conn, self._namespace)


Response = tuple[int, dict[str, Any]]


class IdempotencyKeys:
    """Runs a request once per (principal, Idempotency-Key); a repeat gets the stored response back."""

    def __init__(self, engine: AsyncEngine, namespace: str) -> None:
        self._engine = engine
        self._namespace = namespace

    async def run(
        self, principal: str, key: str, request_hash: str, compute: Callable[[], Awaitable[Response]]
    ) -> Response:
        async with self._engine.begin() as conn:
            # Serializes concurrent repeats of one key; different keys never wait for each other.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": f"{self._namespace}\x1f{principal}\x1f{key}"},
            )
            stored = (
                await conn.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.namespace == self._namespace,
                        idempotency_keys.c.principal == principal,
                        idempotency_keys.c.key == key,
                    )
                )
            ).first()
            if stored is not None:
                if stored.request_hash != request_hash:
                    raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different request")
                return stored.status_code, dict(stored.body)
            status, body = await compute()
            await conn.execute(
                insert(idempotency_keys).values(
                    namespace=self._namespace,
                    principal=principal,
                    key=key,
                    request_hash=request_hash,
                    status_code=status,
                    body=json.loads(json.dumps(body)),
                )
            )
            return status, body
