"""Reading the read models: filtered, keyset-paginated pages, each with the checkpoint of the projection that
wrote it, and a bounded wait for a projection to pass a given offset (a client waiting for its own write)."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Integer, Select, Table, and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from projections import tables
from projections.errors import ProjectionError

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
    """The read models of one namespace's schema."""

    def __init__(self, engine: AsyncEngine, schema: str) -> None:
        # Autocommit: a read needs no transaction. Under READ COMMITTED each statement takes its own snapshot anyway,
        # so a BEGIN before the first and the ROLLBACK when the connection goes back to the pool were two more
        # round trips to Postgres per request that changed nothing. Each read takes the checkpoint before the rows,
        # so the rows hold at least everything up to the checkpoint the answer carries.
        self._engine = engine.execution_options(schema_translate_map={None: schema}, isolation_level="AUTOCOMMIT")
        self.schema = schema

    async def page(
        self,
        projection: str,
        table: Table,
        *,
        where: Sequence[ColumnElement[bool]] = (),
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Rows of ``table`` matching ``where`` in primary-key order, ``limit`` at most, after ``cursor``."""
        pk = list(table.primary_key.columns)
        query: Select[Any] = select(table).where(*where).order_by(*pk).limit(limit + 1)
        if cursor is not None:
            query = query.where(tuple_(*pk) > tuple_(*_decode_cursor(cursor, table)))
        async with self._engine.connect() as conn:
            checkpoint = await self._checkpoint(conn, projection)
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        following = _encode_cursor([rows[-1][c.name] for c in pk]) if more else None
        return Page([_document(r) for r in rows], following, checkpoint)

    async def one(self, projection: str, table: Table, where: Sequence[ColumnElement[bool]]) -> Page:
        """The row matching ``where`` (an empty page when there is none)."""
        async with self._engine.connect() as conn:
            checkpoint = await self._checkpoint(conn, projection)
            row = (await conn.execute(select(table).where(*where))).mappings().first()
        return Page([] if row is None else [_document(dict(row))], None, checkpoint)

    async def trail(self, order_id: str) -> Page:
        """Every event of an order, in the order they were caused: request, risk, venue; each in log order."""
        t = tables.order_events
        async with self._engine.connect() as conn:
            checkpoint = await self._checkpoint(conn, "order_events")
            rows = [dict(r) for r in (await conn.execute(select(t).where(t.c.order_id == order_id))).mappings()]
        rows.sort(key=lambda r: (STAGES.get(r["topic"], 9), r["occurred_at"], r["partition"], r["offset"]))
        return Page([_document(r) for r in rows], None, checkpoint)

    async def passed(self, projection: str, position: Position) -> bool:
        """Whether ``projection`` has read past ``position`` (one look, autocommit: it sees the latest commit)."""
        c = tables.projection_checkpoints.c
        query = select(c.offset).where(
            and_(c.projection == projection, c.topic == position.topic, c.partition == position.partition)
        )
        async with self._engine.connect() as conn:
            offset = (await conn.execute(query)).scalar()
        return offset is not None and offset > position.offset

    async def wait_for(self, projection: str, position: Position, timeout_s: float) -> bool:
        """Whether ``projection`` has read past ``position`` within ``timeout_s``.

        Each look takes a pooled connection and gives it back before sleeping: a waiting client must not hold one
        of the connections every command and query shares. The pause grows to ``_POLL_MAX_S`` so that many waiting
        clients do not turn into a flood of queries.
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

    async def _checkpoint(self, conn: AsyncConnection, projection: str) -> Checkpoint:
        rows = (await conn.execute(_checkpoint_query(projection))).all()
        offsets = [{"topic": r.topic, "partition": r.partition, "offset": r.offset} for r in rows]
        return Checkpoint(projection, offsets, max((r.updated_at for r in rows), default=None))


@functools.cache
def _checkpoint_query(projection: str) -> Select[Any]:
    """A projection's checkpoint rows; built once per projection (every answer carries its checkpoint)."""
    c = tables.projection_checkpoints.c
    return (
        select(c.topic, c.partition, c.offset, c.updated_at)
        .where(c.projection == projection)
        .order_by(c.topic, c.partition)
    )


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, never a float
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in row.items()}


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
    return str(value)
