"""The write side's own Postgres tables (schema ``command_side``): which orders exist and who owns them, the
per-aggregate sequence counters, and stored Idempotency-Key outcomes. Kafka stays the record of *what happened*;
these tables only make commands idempotent, ordered and authorizable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
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
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import IdempotencyKeyReused
from commands.gateway import Appended, Claim, Earlier, Placed
from commands.refs import OrderRef
from projections.db import autocommit_pool
from projections.settings import DatabaseSettings
from schemas.events import OrderType

S = TypeVar("S", bound="_Session")

SCHEMA = "command_side"
APPLICATION_NAME = "tradecore-command-store"  # how an operator tells these connections apart in pg_stat_activity
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
    UniqueConstraint("account_id", "client_order_id", "namespace", name="orders_client_order_id_per_account"),
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


# A look-up of ``orders`` by a batch's keys joins the namespace as a column of the batch's rows (a materialized CTE,
# opaque to the planner), not as a condition on the table. Planned by what the statistics say of the namespace, it had
# been taken for a few rows — new or grown since the last analyze, or one of many small ones analyzed (an average or a
# common value's share) — and the table put outside the join: the namespace's whole index range walked per batch
# (49 ms a batch at 20,000 orders; a core of Postgres at 800 orders/s). Scanned outside a join without the
# namespace, the table costs all its rows, which the planner knows from its size now: the batch's keys are looked up.
# And a look-up names the whole of each unique key it could use — the claim's the order id too, derived from the
# account and client order id (``commands.decide``) — so no index offers a scan of part of a key (the unique key of a
# client order id leads with the account since migration 0003: led by the namespace, it offered the record one).
# A look-up of one order names its namespace as a sub-select (``_NS``): the same plan for every namespace, by key.
_NS = "(SELECT CAST(%(ns)s AS text))"

# The command store's statements run on psycopg directly (the hot path of every order: SQLAlchemy's execution around
# them was a tenth of an order's CPU, docs/PERFORMANCE.md); psycopg prepares each on the server after a few uses.

# A placement runs outside a transaction: one statement claims its orders, another records where they landed (BEGIN
# and COMMIT had been half its round trips, and a round trip costs the API ≈ 0.1 ms of CPU: docs/PERFORMANCE.md,
# "Stop 33"). What the transaction's row locks did, session advisory locks do: the claim takes one per order id —
# all of them in key order before it inserts, so two placements never wait for each other in a cycle — and the record
# lets them go. A claim stands from its statement on; one whose placement ends without a location (Kafka did not
# confirm it, the process died) is unconfirmed, and only the same request takes it again.
_KEY = "hashtextextended(%(ns)s || chr(31) || {}, 0)"

# Claims of a batch in one round trip: lock, insert what is new, start the new orders' sequence streams, and return
# every claimed (account, client_order_id) with whether this statement took it or an earlier request had. The batch
# is one JSON parameter, not a VALUES list, so the statement is the same for every batch size and is prepared once;
# and not one array per column: psycopg dumps each list element by element in Python, 53 µs for a claim of one order
# and 0.9 ms for 64, against 9 µs and 0.1 ms for the JSON text (docs/PERFORMANCE.md, "Stop 40").
_CLAIM = f"""
    WITH wanted AS MATERIALIZED (
        SELECT w.*, CAST(%(ns)s AS text) AS ns, pg_advisory_lock({_KEY.format("w.order_id")}) FROM (
            SELECT * FROM json_to_recordset(CAST(%(claims)s AS json)) AS u(
                order_id text, account_id text, client_order_id text, instrument text, order_type text,
                request_hash text
            )
            ORDER BY {_KEY.format("u.order_id")}
        ) AS w
    ), claimed AS (
        INSERT INTO {SCHEMA}.orders
            (namespace, order_id, account_id, client_order_id, instrument, order_type, request_hash)
        SELECT %(ns)s, order_id, account_id, client_order_id, instrument, order_type, request_hash FROM wanted
        ON CONFLICT DO NOTHING
        RETURNING order_id, account_id, client_order_id
    ), sequences AS (
        INSERT INTO {SCHEMA}.stream_sequences (namespace, topic, aggregate_id, last_sequence)
        SELECT %(ns)s, 'orders', order_id, 1 FROM claimed
    )
    SELECT c.order_id, c.account_id, c.client_order_id, true AS claimed,
           NULL AS request_hash, NULL AS topic, NULL::int AS partition, NULL::bigint AS "offset"
    FROM claimed c
    UNION ALL
    SELECT o.order_id, o.account_id, o.client_order_id, false, o.request_hash, o.topic, o.partition, o."offset"
    FROM wanted w
    JOIN {SCHEMA}.orders o
      ON o.namespace = w.ns AND o.order_id = w.order_id
     AND o.account_id = w.account_id AND o.client_order_id = w.client_order_id
    WHERE NOT EXISTS (
        SELECT 1 FROM claimed c WHERE c.account_id = w.account_id AND c.client_order_id = w.client_order_id
    )
"""

# Claims as they stand now: the claim's own view dates from before it waited for their locks. FOR SHARE waits for
# the record of the placement that held them (`_RECORD` lets the locks go after its UPDATE, before that commits): a
# plain read could still see the row unrecorded and take it again.
_CLAIMED = f"""
    WITH wanted AS MATERIALIZED (
        SELECT CAST(%(ns)s AS text) AS ns, unnest(CAST(%(order_ids)s AS text[])) AS order_id
    )
    SELECT o.order_id, o.account_id, o.client_order_id, false AS claimed, o.request_hash, o.topic, o.partition,
           o."offset"
    FROM wanted w JOIN {SCHEMA}.orders o ON o.namespace = w.ns AND o.order_id = w.order_id
    FOR SHARE OF o
"""

# Where the placement's orders landed, and their locks let go: the placement's end, in one round trip. The unlock
# reads the UPDATE's rows first, so the rows are locked by it before anyone else gets the advisory locks (a WITH
# statement nobody reads runs at the statement's end, after the SELECT); `_CLAIMED` then waits for its commit.
_RECORD = f"""
    WITH placed AS MATERIALIZED (
        SELECT CAST(%(ns)s AS text) AS ns, r.* FROM json_to_recordset(CAST(%(placed)s AS json))
            AS r(order_id text, topic text, partition int, "offset" bigint)
    ), recorded AS (
        UPDATE {SCHEMA}.orders o SET topic = r.topic, partition = r.partition, "offset" = r."offset"
        FROM placed r
        WHERE o.namespace = r.ns AND o.order_id = r.order_id
        RETURNING 1
    )
    SELECT pg_advisory_unlock_all() FROM (SELECT count(*) FROM recorded) AS done
"""

# An order a command may act on: placed, its OrderPlaced confirmed by Kafka (an unconfirmed one waits for its retry).
# What is read of it never changes once it is placed.
_ORDER = f"""
    SELECT order_id, account_id, instrument, order_type FROM {SCHEMA}.orders
    WHERE namespace = {_NS} AND order_id = %(order_id)s AND topic IS NOT NULL
"""

# A unit runs outside a transaction too, for the same reason as a placement and one more: a sequence must stand from
# the moment it is handed out. The event id derives from it (``domain.derive.event_id_for``), and the events numbered
# with it may be in the log whatever happens to the unit next; a transaction that failed to commit after Kafka had
# acknowledged them (Postgres restarted, the connection dropped) gave the same numbers, so the same event ids, to the
# next command on the order or the next ticks of the instrument. The stream's session advisory lock, taken before its
# numbers and held until the unit ends, keeps what a transaction's row lock kept: the units of one stream append one
# after another, in the order of their numbers.
_NEXT_SEQUENCE = f"""
    WITH locked AS MATERIALIZED (
        SELECT pg_advisory_lock({_KEY.format("%(topic)s || chr(31) || %(aggregate_id)s")})
    )
    INSERT INTO {SCHEMA}.stream_sequences AS s (namespace, topic, aggregate_id, last_sequence)
    SELECT %(ns)s, %(topic)s, %(aggregate_id)s, %(count)s FROM locked
    ON CONFLICT (namespace, topic, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + EXCLUDED.last_sequence
    RETURNING last_sequence
"""


async def _rows(conn: AsyncConnection[Any], statement: str, params: dict[str, Any]) -> list[Any]:
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(statement, params)
        return await cursor.fetchall()


class _Session:
    """A unit's or a placement's connection, taken by its first statement (``PostgresCommandStore._first``), and the
    session advisory locks it holds until it ends."""

    def __init__(self, store: PostgresCommandStore, stack: AsyncExitStack) -> None:
        self._store, self._stack, self._ns = store, stack, store.namespace
        self.conn: AsyncConnection[Any] | None = None
        self.locked = False

    async def _rows(self, statement: str, params: dict[str, Any], *, locks: bool = False) -> list[Any]:
        """What ``statement`` returned; ``locks``: it takes session locks (held from its start: it may fail after)."""
        self.locked |= locks
        if self.conn is None:
            self.conn, rows = await self._store._first(self._stack, statement, params)
            return rows
        return await _rows(self.conn, statement, params)

    async def end(self) -> None:
        raise NotImplementedError


class _Unit(_Session):
    async def order(self, order_id: str) -> OrderRef | None:
        rows = await self._rows(_ORDER, {"ns": self._ns, "order_id": order_id})
        if not rows:
            return None
        row = rows[0]
        return OrderRef(row.order_id, row.account_id, row.instrument, OrderType(row.order_type))

    async def next_sequence(self, topic: str, aggregate_id: str, count: int = 1) -> int:
        params = {"ns": self._ns, "topic": topic, "aggregate_id": aggregate_id, "count": count}
        rows = await self._rows(_NEXT_SEQUENCE, params, locks=True)
        last: int = rows[0].last_sequence
        return last - count + 1

    async def end(self) -> None:
        if self.conn is None or not self.locked:
            return
        try:
            await self.conn.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.OperationalError:
            if not self.conn.broken:
                raise
            # The connection is gone, and the locks with its session; what the unit numbered stands.


class _Placing(_Session):
    """One placement: its claim takes the orders' locks; its record is sent when it ends, with the locks' release."""

    def __init__(self, store: PostgresCommandStore, stack: AsyncExitStack) -> None:
        super().__init__(store, stack)
        self._placed: list[tuple[str, Appended]] = []

    async def claim_orders(self, claims: Sequence[Claim]) -> list[Earlier | None]:
        if self.conn is not None:  # a second connection's locks would outlive this placement
            raise RuntimeError("a placement claims its orders once")
        rows = await self._rows(_CLAIM, claim_params(self._ns, claims), locks=True)
        by_key = {(row.account_id, row.client_order_id): row for row in rows}
        # Not taken now and, as the claim saw them, not placed: in flight elsewhere when it began, or unconfirmed.
        # The claim now holds their locks, so what it reads of them again is final.
        unsure = [
            c.order.order_id
            for c in claims
            if (row := by_key.get((c.order.account_id, c.client_order_id))) is None
            or (not row.claimed and row.topic is None)
        ]
        if unsure:
            found = await self._rows(_CLAIMED, {"ns": self._ns, "order_ids": unsure})
            by_key.update({(row.account_id, row.client_order_id): row for row in found})
        outcomes: list[Earlier | None] = []
        for claim in claims:
            row = by_key[(claim.order.account_id, claim.client_order_id)]
            if row.claimed or (row.topic is None and row.request_hash == claim.request_hash):
                outcomes.append(None)  # new, or unconfirmed and taken again by its own request
                continue
            placed = Placed(row.order_id, Appended(row.topic, row.partition, row.offset), repeated=True)
            outcomes.append(Earlier(placed, row.request_hash))
        return outcomes

    async def record_placed(self, placed: Sequence[tuple[str, Appended]]) -> None:
        self._placed.extend(placed)

    async def end(self) -> None:
        if self.conn is not None:
            await self.conn.execute(_RECORD, record_params(self._ns, self._placed))


def claim_params(namespace: str, claims: Sequence[Claim]) -> dict[str, Any]:
    """``_CLAIM``'s parameters for ``claims``."""
    rows = [
        {
            "order_id": c.order.order_id,
            "account_id": c.order.account_id,
            "client_order_id": c.client_order_id,
            "instrument": c.order.instrument,
            "order_type": c.order.order_type.value,
            "request_hash": c.request_hash,
        }
        for c in claims
    ]
    return {"ns": namespace, "claims": json.dumps(rows)}


def record_params(namespace: str, placed: Sequence[tuple[str, Appended]]) -> dict[str, Any]:
    """``_RECORD``'s parameters for ``placed``."""
    rows = [
        {"order_id": order_id, "topic": where.topic, "partition": where.partition, "offset": where.offset}
        for order_id, where in placed
    ]
    return {"ns": namespace, "placed": json.dumps(rows)}


class PostgresCommandStore:
    """``commands.gateway.CommandStore`` on Postgres: rows of one topic namespace, over ``pool`` (``command_pool``)."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], namespace: str) -> None:
        self._pool = pool
        self.namespace = namespace

    def unit(self) -> AbstractAsyncContextManager[_Unit]:
        return self._session(_Unit)

    def placing(self) -> AbstractAsyncContextManager[_Placing]:
        return self._session(_Placing)

    @asynccontextmanager
    async def _session(self, kind: Callable[[PostgresCommandStore, AsyncExitStack], S]) -> AsyncIterator[S]:
        async with AsyncExitStack() as stack:
            session = kind(self, stack)
            try:
                yield session
                await session.end()
            except BaseException:
                if session.locked and session.conn is not None:  # the locks go with the session: the pool replaces
                    await session.conn.close()  # a closed connection
                raise

    async def _first(
        self, stack: AsyncExitStack, statement: str, params: dict[str, Any]
    ) -> tuple[AsyncConnection[Any], list[Any]]:
        """A pooled connection, ended by ``stack``, and what ``statement`` — the first of a unit or a placement —
        returned on it. A connection Postgres dropped while it sat in the pool (a restart) fails that statement before
        it did anything: it goes back (the pool discards it) and the next is tried — what a ping before each use would
        find, without the round trip."""
        for attempt in range(self._pool.max_size + 1):
            async with AsyncExitStack() as trying:
                conn = await trying.enter_async_context(self._pool.connection())
                try:
                    found = await _rows(conn, statement, params)
                except BaseException as err:
                    if isinstance(err, psycopg.OperationalError) and conn.broken and attempt < self._pool.max_size:
                        continue
                    await conn.close()  # a statement that failed may hold session locks it took: none go back
                    raise
                stack.push_async_exit(trying.pop_all())
                return conn, found
        raise AssertionError("unreachable: the last attempt returns or raises")


async def _plan_once(conn: AsyncConnection[Any]) -> None:
    # The store's statements look rows up by key, the same plan whatever the values (the namespace a column of the
    # batch's rows or a sub-select: above), and psycopg prepares them after a few uses. Postgres still plans a
    # prepared statement afresh for each execution while it guesses that plan cheaper than the generic one — the
    # record's forever: 0.09 ms of Postgres CPU a group commit, as much as running it (docs/PERFORMANCE.md, "Stop 39").
    # And that plan is one of key look-ups whatever the planner guesses of a batch's size: a batch given as JSON is
    # 100 rows to it (an array's unnest had been 10), and against a namespace the statistics took for small, a scan of
    # the namespace joined by hashing then looked cheaper than a look-up per order — a group commit read the whole
    # namespace (tests/api/test_store.py). Scans and hash or merge joins are priced out on these connections only.
    await conn.execute(
        "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; SET enable_hashjoin = off;"
        " SET enable_mergejoin = off"
    )


def command_pool(settings: DatabaseSettings, *, max_size: int = 10) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A closed pool (``await pool.open()``) for ``PostgresCommandStore``: autocommit connections, each statement
    planned once per connection."""
    return autocommit_pool(settings, "command-store", APPLICATION_NAME, max_size, _plan_once)


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
