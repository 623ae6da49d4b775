"""Reading the read models: filtered, keyset-paginated pages, each with the checkpoint of the projection that
wrote it, and a bounded wait for a projection to pass a given offset (a client waiting for its own write)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, Integer, Table

from projections import statements, tables
from projections.errors import ProjectionError
from projections.statements import Condition

_POLL_MIN_S = 0.005
_POLL_MAX_S = 0.1
STAGES = {"orders": 0, "orders.checked": 1, "executions": 2}  # the order an order's events are caused in


class BadCursor(ProjectionError):
    """A pagination cursor that this service did not hand out."""


@dataclass(frozen=True)
class Checkpoint:
    """How far a projection has read: the next offset of each partition, and when it last committed."""

    projection: str
    offsets: list[dict[str, Any]]
    updated_at: datetime | None

    def document(self) -> dict[str, Any]:
        return {"projection": self.projection, "offsets": self.offsets, "updated_at": _json(self.updated_at)}


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None
    checkpoint: Checkpoint

    def document(self) -> dict[str, Any]:
        return {"items": self.items, "next": self.next, "checkpoint": self.checkpoint.document()}


MAX_PARTITION = 2**31 - 1  # Kafka's partition numbers and offsets are signed 32- and 64-bit integers
MAX_OFFSET = 2**63 - 1


@dataclass(frozen=True)
class Position:
    """A place in the log a client wants a projection to have passed: ``topic:partition:offset``."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def parse(cls, token: str, topic_prefix: str) -> Position:
        try:
            topic, partition, offset = token.rsplit(":", 2)
            position = cls(topic.removeprefix(topic_prefix), int(partition), int(offset))
        except ValueError:
            raise ProjectionError(
                f"min_offset {token!r} is not topic:partition:offset",
                hint="pass the `event` a command answered with, e.g. orders:3:1042",
            ) from None
        if not (0 <= position.partition <= MAX_PARTITION and 0 <= position.offset <= MAX_OFFSET):
            raise ProjectionError(
                f"min_offset {token!r} is outside Kafka's range (partition 0..{MAX_PARTITION}, offset 0..{MAX_OFFSET})"
            )
        return position


class ReadModels:
    """The read models of one namespace's schema, read through a psycopg pool (``projections.readpool``) with
    statements compiled once per shape (``projections.statements``) and prepared on each connection."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], schema: str) -> None:
        self._pool = pool
        self.schema = schema

    async def page(
        self,
        projection: str,
        table: Table,
        *,
        where: Sequence[Condition] = (),
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Rows of ``table`` matching ``where`` in primary-key order, ``limit`` at most, after ``cursor``."""
        bound = {**statements.params(where), "projection": projection, "limit": limit + 1}
        if cursor is not None:
            bound.update({f"k{i}": value for i, value in enumerate(_decode_cursor(cursor, table))})
        statement = statements.read(self.schema, table, statements.shape(where), paged=True, after=cursor is not None)
        checkpoint, rows = await self._read(projection, statement, bound)
        more = len(rows) > limit
        rows = rows[:limit]
        following = _encode_cursor([rows[-1][name] for name in statement.key]) if more else None
        return Page(rows, following, checkpoint)

    async def rows(self, projection: str, table: Table, where: Sequence[Condition]) -> Page:
        """Every row matching ``where``, in no particular order (one page, no cursor)."""
        statement = statements.read(self.schema, table, statements.shape(where), paged=False, after=False)
        checkpoint, rows = await self._read(
            projection, statement, {**statements.params(where), "projection": projection}
        )
        return Page(rows, None, checkpoint)

    async def trail(self, order_id: str) -> Page:
        """Every event of an order, in the order they were caused: request, risk, venue; each in log order."""
        page = await self.rows("order_events", tables.order_events, [Condition("order_id", "=", order_id)])
        page.items.sort(key=lambda r: (STAGES.get(r["topic"], 9), r["occurred_at"], r["partition"], r["offset"]))
        return page

    async def passed(self, projection: str, position: Position) -> bool:
        """Whether ``projection`` has read past ``position`` (one look, autocommit: it sees the latest commit)."""
        bound = {"projection": projection, "topic": position.topic, "partition": position.partition}
        found = await self._fetch(statements.passed(self.schema), bound)
        return bool(found) and found[0][0] > position.offset

    async def wait_for(self, projection: str, position: Position, timeout_s: float) -> bool:
        """Whether ``projection`` has read past ``position`` within ``timeout_s``.

        Each look takes a pooled connection and gives it back before sleeping: a waiting client must not hold one
        of the connections every query shares. The pause grows to ``_POLL_MAX_S`` so that many waiting clients do
        not turn into a flood of queries.
        """
        deadline = time.monotonic() + timeout_s
        pause = _POLL_MIN_S
        while not await self.passed(projection, position):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _POLL_MAX_S)
        return True

    async def _fetch(self, sql: str, bound: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one prepared statement. Connections are not pinged before each use (a round trip per read):
        when one turns out broken (Postgres restarted), every idle one is checked and the read runs once more."""
        try:
            return await self._fetch_once(sql, bound)
        except psycopg.OperationalError:
            await self._pool.check()
            return await self._fetch_once(sql, bound)

    async def _fetch_once(self, sql: str, bound: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            return await (await conn.execute(sql, bound, prepare=True)).fetchall()

    async def _read(
        self, projection: str, statement: statements.Statement, bound: dict[str, Any]
    ) -> tuple[Checkpoint, list[dict[str, Any]]]:
        """The checkpoint and the rows as the answers carry them: numerics arrive as Postgres's exact text
        (``readpool``), timestamps become ISO 8601 here."""
        found = await self._fetch(statement.sql, bound)
        offsets, updated_at = found[0][0], found[0][1]
        checkpoint = Checkpoint(projection, offsets, _json(updated_at))
        columns, timestamps = statement.columns, statement.timestamps
        key = columns.index(statement.key[0])
        rows: list[dict[str, Any]] = []
        for row in found:
            values = list(row[2:])
            if values[key] is None:  # no row matched: the checkpoint's row, with nulls
                break
            for i in timestamps:
                if values[i] is not None:
                    values[i] = values[i].isoformat()
            rows.append(dict(zip(columns, values, strict=True)))
        return checkpoint, rows


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([_json(v) for v in values]).encode()).decode()


def _decode_cursor(cursor: str, table: Table) -> list[Any]:
    pk = list(table.primary_key.columns)
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != len(pk):
            raise ValueError("not a key of this table")
        return [_typed(column.type, value) for column, value in zip(pk, values, strict=True)]
    except ValueError as err:  # binascii.Error and json.JSONDecodeError are ValueErrors
        raise BadCursor(f"cursor {cursor!r} is not one this list handed out: {err}") from err


def _typed(kind: Any, value: Any) -> Any:
    if isinstance(kind, DateTime):
        return datetime.fromisoformat(str(value))
    if isinstance(kind, Integer):
        return int(value)
    text = str(value)
    if "\x00" in text:  # Postgres text cannot hold NUL: the statement would fail, a 5xx for the client's mistake
        raise ValueError("a key holds NUL")
    return text
