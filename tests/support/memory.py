"""In-memory implementations of the write side's ports (``commands.gateway``): the command store and the event log.

They keep the contracts the Postgres store and the Kafka log keep (tests/support/contracts.py checks both against
the same suite), so the gateway's logic is tested without a stack. The store runs one unit at a time; the log can be
told to refuse events, as Kafka may.
"""

from __future__ import annotations

import asyncio
import functools
import io
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import fastavro
import polars as pl

from commands.gateway import Appended, Claim, Earlier, Headers, Placed
from commands.refs import OrderRef
from schemas import avsc, codec
from schemas.batch import BatchEncoder
from schemas.batch.framing import HEADER
from schemas.events import Event


@dataclass
class _Order:
    ref: OrderRef
    client_order_id: str
    request_hash: str
    appended: Appended | None = None


@dataclass
class _Tables:
    orders: dict[str, _Order] = field(default_factory=dict)  # by order id
    claims: dict[tuple[str, str], str] = field(default_factory=dict)  # (account, client order id) -> order id
    sequences: dict[tuple[str, str], int] = field(default_factory=dict)  # (topic, aggregate) -> last sequence


class _MemoryUnit:
    """A unit and a placement at once: ``MemoryCommandStore`` says which it is by how it ends."""

    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    async def claim_orders(self, claims: Sequence[Claim]) -> list[Earlier | None]:
        outcomes: list[Earlier | None] = []
        for claim in claims:
            key = (claim.order.account_id, claim.client_order_id)
            held = self._t.claims.get(key)
            if held is None:
                self._t.claims[key] = claim.order.order_id
                self._t.orders[claim.order.order_id] = _Order(claim.order, claim.client_order_id, claim.request_hash)
                self._t.sequences[("orders", claim.order.order_id)] = 1  # OrderPlaced is the stream's first event
                outcomes.append(None)
                continue
            earlier = self._t.orders[held]
            if earlier.appended is None and earlier.request_hash == claim.request_hash:
                outcomes.append(None)  # unconfirmed: taken again by the same request
                continue
            # Like the Postgres row of a claim not yet recorded, an unrecorded location is all None.
            where = earlier.appended or Appended(None, None, None)  # type: ignore[arg-type]
            outcomes.append(Earlier(Placed(held, where, repeated=True), earlier.request_hash))
        return outcomes

    async def record_placed(self, placed: Sequence[tuple[str, Appended]]) -> None:
        for order_id, where in placed:
            self._t.orders[order_id].appended = where

    async def order(self, order_id: str) -> OrderRef | None:
        found = self._t.orders.get(order_id)
        return None if found is None or found.appended is None else found.ref

    async def next_sequence(self, topic: str, aggregate_id: str, count: int = 1) -> int:
        last = self._t.sequences.get((topic, aggregate_id), 0) + count
        self._t.sequences[(topic, aggregate_id)] = last
        return last - count + 1


class MemoryCommandStore:
    """``CommandStore`` in memory: units and placements run one at a time."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[_MemoryUnit]:
        """One unit or placement at a time (as Postgres' locks hold a placement's orders and a unit's streams until
        it ends); what it did stands, raise or not."""
        async with self._lock:
            yield _MemoryUnit(self._tables)

    placing = unit

    def claimed(self, account_id: str, client_order_id: str) -> bool:
        """Whether a committed claim holds (account, client order id)."""
        return (account_id, client_order_id) in self._tables.claims

    def last_sequence(self, topic: str, aggregate_id: str) -> int:
        """The last sequence a committed unit claimed in the aggregate's stream (0: none)."""
        return self._tables.sequences.get((topic, aggregate_id), 0)


@dataclass(frozen=True, slots=True)
class Record:
    """An event as the log holds it."""

    event: Event
    key: str
    headers: Headers | None


class MemoryEventLog:
    """``EventLog`` in memory: topics (with ``topic_prefix``) of ``partitions`` partitions, keyed as Kafka keys them
    (one key, one partition); ``refuse`` decides per event whether the log takes it or answers with an error."""

    def __init__(
        self,
        topic_prefix: str = "",
        partitions: int = 6,
        refuse: Callable[[Event], Exception | None] = lambda _event: None,
    ) -> None:
        self.topic_prefix = topic_prefix
        self.partitions = partitions
        self.refuse = refuse
        self.topics: dict[str, list[list[Record]]] = {}

    async def append(
        self, events: Sequence[Event], headers: Sequence[Headers | None] | None = None
    ) -> list[Appended | Exception]:
        answers: list[Appended | Exception] = []
        for i, event in enumerate(events):
            refused = self.refuse(event)
            if refused is not None:
                answers.append(refused)
                continue
            topic = self.topic_prefix + event.route().topic
            partitions = self.topics.setdefault(topic, [[] for _ in range(self.partitions)])
            partition = zlib.crc32(event.key.encode()) % self.partitions
            partitions[partition].append(Record(event, event.key, headers[i] if headers else None))
            answers.append(Appended(topic, partition, len(partitions[partition]) - 1))
        await asyncio.sleep(0)  # an append is a round trip: let other tasks run, as they would while Kafka answers
        return answers

    async def append_frame(
        self, event: type[Event], frame: pl.DataFrame, headers: Headers | None = None
    ) -> list[Appended | Exception]:
        """The frame's rows as events, appended as ``append`` does: encoded by the batch codec and read back record
        by record with fastavro, so the events are what a reader of the bytes gets."""
        schema = _parsed(event.__name__)
        bodies = (io.BytesIO(value[HEADER:]) for value in BatchEncoder(event, 1).encode(frame))
        events = [codec.from_avro(event, fastavro.schemaless_reader(body, schema, schema)) for body in bodies]
        return await self.append(events, [headers] * len(events))

    @asynccontextmanager
    async def load(self, event: type[Event]) -> AsyncIterator[Callable[[Callable[[], pl.DataFrame]], Awaitable[None]]]:
        """Each frame made and appended as ``append_frame`` appends it; the first refusal raised when the block ends."""
        refused: list[Exception] = []

        async def send(make: Callable[[], pl.DataFrame]) -> None:
            answers = await self.append_frame(event, make())
            refused.extend(answer for answer in answers if isinstance(answer, Exception))

        yield send
        if refused:
            raise refused[0]

    def events(self, topic: str) -> list[Event]:
        """Every event of ``topic`` (before the prefix), partition by partition."""
        return [record.event for part in self.topics.get(self.topic_prefix + topic, []) for record in part]


_FRAMED = bytes([0, 0, 0, 0, 1])  # magic byte, schema id 1


@functools.cache
def _parsed(name: str) -> Any:
    """fastavro's parsed writer schema of event ``name``, once per type (parsing per event cost more than writing)."""
    return fastavro.parse_schema(avsc.expanded(name))


class EncodingEventLog(MemoryEventLog):
    """The in-memory log, keeping the record values (schema id 1) each path writes: fastavro per event as
    ``EventSerializer`` writes them, the batch codec per frame; ``frames`` counts the frames appended."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[bytes] = []
        self.frames = 0
        self._framed = False  # append called by append_frame: its values are recorded already

    async def append(
        self, events: Sequence[Event], headers: Sequence[Headers | None] | None = None
    ) -> list[Appended | Exception]:
        if not self._framed:
            for event in events:
                body = io.BytesIO()
                fastavro.schemaless_writer(body, _parsed(type(event).__name__), codec.to_avro(event))
                self.values.append(_FRAMED + body.getvalue())
        return await super().append(events, headers)

    async def append_frame(
        self, event: type[Event], frame: pl.DataFrame, headers: Headers | None = None
    ) -> list[Appended | Exception]:
        self.frames += 1
        self.values += BatchEncoder(event, 1).encode(frame)
        self._framed = True
        try:
            return await super().append_frame(event, frame, headers)
        finally:
            self._framed = False
