"""The command gateway: validate, decide, append — with idempotency and per-aggregate sequences kept on the write
side: a command's transaction commits only after Kafka has acknowledged its events; an order's claim stands from the
moment it is made, unconfirmed until where Kafka put its OrderPlaced is recorded (``Placing``).

Placements are group-committed: orders arriving while earlier ones are in flight wait together and go through as one
batch — one claim statement, one append, one record — so the cost of a round trip to Postgres and Kafka is shared
by every order of the batch instead of paid by each. An idle gateway sends an order alone, at once.

Storage and the log are ports (``CommandStore``, ``EventLog``) so that this module stays free of Kafka and SQL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple, Protocol, cast

import polars as pl

from commands import decide, tick_frames
from commands.decide import Stamp
from commands.errors import CommandError
from commands.group_commit import GroupCommit
from commands.models import AmendOrder, CancelOrder, IngestTicks, PlaceOrder, SetRiskLimits, ToggleKillSwitch
from commands.refs import OrderRef
from commands.tick_frames import TickAt
from commands.validation import validate_amend, validate_place, validate_ticks
from domain.instruments import InstrumentRegistry
from schemas.events import Event, OrderPlaced, TickIngested

Headers = Mapping[str, str]


class Appended(NamedTuple):
    """Where an event now is in the log. (A named tuple: a tick batch makes one per record, and a frozen dataclass
    costs four times as much to make — a tenth of the file ingest's CPU went on delivery reports.)"""

    topic: str
    partition: int
    offset: int


class EventLog(Protocol):
    """Where the gateway's events go (Kafka: ``streams.eventlog``; in memory: ``tests.support.memory``)."""

    async def append(
        self, events: Sequence[Event], headers: Sequence[Headers | None] | None = None
    ) -> list[Appended | Exception]:
        """Append ``events`` in order (with ``headers[i]`` on event i) and return once Kafka has answered for each:
        where it landed (acknowledged by all in-sync replicas), or why it did not."""
        ...

    async def append_frame(
        self, event: type[Event], frame: pl.DataFrame, headers: Headers | None = None
    ) -> list[Appended | Exception]:
        """``append`` for events of one type given as the rows of ``frame`` (the batch codec's columns,
        ``schemas.batch``), all with ``headers``: the bytes are those ``append`` writes for the same events; the
        answers may come in the order Kafka gave them rather than the rows'."""
        ...

    def load(
        self, event: type[Event]
    ) -> AbstractAsyncContextManager[Callable[[Callable[[], pl.DataFrame]], Awaitable[None]]]:
        """A bulk load of ``event`` rows that needs no answer per record. Each frame is given as the call that makes
        it (the log may make it on a worker thread while it writes the frame before): written as ``append_frame``
        writes it, after the frames given before. The block ends once every record of every frame given is
        acknowledged, or raises why not — also when the block itself raised."""
        ...


@dataclass(frozen=True, slots=True)
class Claim:
    """An order the gateway wants to place, as the write side records it."""

    order: OrderRef
    client_order_id: str
    request_hash: str


class Placing(Protocol):
    """One placement of a batch of orders: claimed, appended, recorded. Not a transaction: a claim stands from the
    moment it is made, and one whose placement ends without recording where it landed is unconfirmed."""

    async def claim_orders(self, claims: Sequence[Claim]) -> list[Earlier | None]:
        """Reserve the orders (each (account, client order id) at most once in ``claims``); for each: None if
        reserved now — new, or unconfirmed and claimed again by the same request — else what the earlier placement
        recorded. An order another placement holds makes this wait until that placement ends."""
        ...

    async def record_placed(self, placed: Sequence[tuple[str, Appended]]) -> None:
        """Remember where each order's OrderPlaced landed (when the placement ends)."""
        ...


class CommandUnit(Protocol):
    """One command's numbering. Not a transaction: a sequence stands from the moment it is handed out, even when the
    block raises or the unit cannot end. The event id derives from it (``domain.derive.event_id_for``), and an append
    that raised may be in the log, in part, as may one whose unit failed after Kafka acknowledged it: handing its
    numbers out again gave two different events one id (the next command on the order, the next ticks of the
    instrument). A failed append leaves a gap in the stream's numbering instead."""

    async def order(self, order_id: str) -> OrderRef | None:
        """The order, once its placement is confirmed."""
        ...

    async def next_sequence(self, topic: str, aggregate_id: str, count: int = 1) -> int:
        """Reserve ``count`` sequence numbers of the aggregate's stream in ``topic``; the first of them. The stream
        is the unit's until it ends: another unit asking for its numbers waits, so a stream's events are appended in
        the order of their numbers."""
        ...


class CommandStore(Protocol):
    """The write side's records (Postgres: ``api.store``; in memory: ``tests.support.memory``)."""

    def unit(self) -> AbstractAsyncContextManager[CommandUnit]:
        """A unit: the streams it numbered are let go when the block ends, normally or not."""
        ...

    def placing(self) -> AbstractAsyncContextManager[Placing]:
        """A placement: its claims stand even when the block raises (unconfirmed, then)."""
        ...


class UnknownOrder(CommandError):
    """No order has that id."""


class ClientOrderIdReused(CommandError):
    """The account already used this client_order_id for a different order."""


@dataclass(frozen=True, slots=True)
class Placed:
    """The outcome of placing an order; ``repeated`` when an earlier identical request had already placed it."""

    order_id: str
    appended: Appended
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class Earlier:
    """A placement the write side had already recorded: where its event landed, and which request made it."""

    placed: Placed
    request_hash: str


@dataclass(frozen=True, slots=True)
class Requested:
    """The outcome of a command on an existing order or account."""

    event: Event
    appended: Appended


def _reused_message(claim: Claim, earlier_order_id: str) -> str:
    return (
        f"client_order_id {claim.client_order_id} of account {claim.order.account_id} was used for another order "
        f"({earlier_order_id})"
    )


@dataclass(frozen=True, slots=True)
class _Placement:
    claim: Claim
    event: OrderPlaced
    headers: Headers | None


def request_fingerprint(command: PlaceOrder) -> str:
    """What makes two placements the same request (JSON of the command, canonical)."""
    return hashlib.sha256(command.model_dump_json().encode()).hexdigest()


class CommandGateway:
    """Turns validated commands into appended events."""

    def __init__(
        self,
        log: EventLog,
        store: CommandStore,
        instruments: InstrumentRegistry,
        *,
        placements_in_flight: int = 1,
        tick_max_ahead: timedelta = timedelta(seconds=5),
        placement_committed: Callable[[int, float], None] | None = None,
        placement_step: Callable[[str, float], None] | None = None,
    ) -> None:
        """``placement_committed`` hears each group commit of placements: its orders, and its seconds;
        ``placement_step`` each of its steps that ran — ``claim``, ``append``, ``record`` — and its seconds, also
        when the step failed: which of Postgres and Kafka a slow commit waited on."""
        self.log = log
        self.store = store
        self.instruments = instruments
        self.tick_max_ahead = tick_max_ahead
        self._placements = GroupCommit(self._place_batch, in_flight=placements_in_flight, observe=placement_committed)
        self._placement_step = placement_step

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._step_ran(name, started)

    def _step_ran(self, name: str, started: float) -> None:
        if self._placement_step is not None:
            self._placement_step(name, time.perf_counter() - started)

    async def _place_batch(self, batch: Sequence[_Placement]) -> list[Placed | Exception]:
        """One placement for the batch: claim every order, append those claimed now, record where they landed.

        Repeats of one (account, client order id) inside the batch are answered from its first occurrence, as
        repeats across batches are answered from the store.
        """
        first: dict[str, int] = {}
        for i, placement in enumerate(batch):
            first.setdefault(placement.event.order_id, i)
        leaders = sorted(set(first.values()), key=lambda i: batch[i].event.order_id)  # one lock order everywhere
        outcomes: dict[int, Earlier | Exception] = {}
        recording: float | None = None  # when the record began: the placement's end
        try:
            async with self.store.placing() as placing:
                with self._step("claim"):
                    claimed = await placing.claim_orders([batch[i].claim for i in leaders])
                fresh = [i for i, earlier in zip(leaders, claimed, strict=True) if earlier is None]
                for i, earlier in zip(leaders, claimed, strict=True):
                    if earlier is not None:
                        outcomes[i] = earlier
                with self._step("append"):
                    answers = await self.log.append([batch[i].event for i in fresh], [batch[i].headers for i in fresh])
                landed = [(i, where) for i, where in zip(fresh, answers, strict=True) if isinstance(where, Appended)]
                # A failed append leaves its claim unconfirmed, not released: Kafka may have the record (a timed-out
                # acknowledgement), so only the same request may take the claim again (docs/STREAMS.md, "A placement
                # appended twice").
                await placing.record_placed([(batch[i].event.order_id, where) for i, where in landed])
                recording = time.perf_counter()
        finally:
            if recording is not None:
                self._step_ran("record", recording)
        for i, where in zip(fresh, answers, strict=True):
            outcomes[i] = (
                Earlier(Placed(batch[i].event.order_id, where), batch[i].claim.request_hash)
                if isinstance(where, Appended)
                else where
            )
        placed_now = set(fresh)
        results: list[Placed | Exception] = []
        for i, placement in enumerate(batch):
            outcome = outcomes[first[placement.event.order_id]]
            if isinstance(outcome, Exception):
                results.append(outcome)
            elif outcome.request_hash != placement.claim.request_hash:
                results.append(ClientOrderIdReused(_reused_message(placement.claim, outcome.placed.order_id)))
            elif i in placed_now:
                results.append(outcome.placed)
            else:
                results.append(Placed(outcome.placed.order_id, outcome.placed.appended, repeated=True))
        return results

    async def place(self, command: PlaceOrder, stamp: Stamp, headers: Headers | None = None) -> Placed:
        """Append OrderPlaced once per (account, client_order_id); a repeat returns the first outcome."""
        validate_place(command, self.instruments)
        event = decide.place_order(command, stamp)
        ref = OrderRef(event.order_id, event.account_id, event.instrument, event.order_type)
        return await self._placements.submit(
            _Placement(Claim(ref, command.client_order_id, request_fingerprint(command)), event, headers)
        )

    async def cancel(
        self,
        order_id: str,
        command: CancelOrder,
        stamp: Stamp,
        authorize: Callable[[OrderRef], None],
        headers: Headers | None = None,
    ) -> Requested:
        async with self.store.unit() as unit:
            order = await self._owned(unit, order_id, authorize)
            sequence = await unit.next_sequence("orders", order_id)
            event = decide.request_cancel(command, order, sequence, stamp)
            [appended] = await self._append([event], headers)
        return Requested(event, appended)

    async def amend(
        self,
        order_id: str,
        command: AmendOrder,
        stamp: Stamp,
        authorize: Callable[[OrderRef], None],
        headers: Headers | None = None,
    ) -> Requested:
        async with self.store.unit() as unit:
            order = await self._owned(unit, order_id, authorize)
            validate_amend(command, order, self.instruments)
            sequence = await unit.next_sequence("orders", order_id)
            event = decide.request_amend(command, order, sequence, stamp)
            [appended] = await self._append([event], headers)
        return Requested(event, appended)

    async def set_risk_limits(
        self,
        account_id: str,
        command: SetRiskLimits,
        set_by: str,
        stamp: Stamp,
        headers: Headers | None = None,
    ) -> Requested:
        async with self.store.unit() as unit:
            sequence = await unit.next_sequence("orders", account_id)
            event = decide.set_risk_limits(command, account_id, set_by, sequence, stamp)
            [appended] = await self._append([event], headers)
        return Requested(event, appended)

    async def toggle_kill_switch(
        self, command: ToggleKillSwitch, set_by: str, stamp: Stamp, headers: Headers | None = None
    ) -> Requested:
        async with self.store.unit() as unit:
            sequence = await unit.next_sequence("orders", command.account_id)
            event = decide.toggle_kill_switch(command, set_by, sequence, stamp)
            [appended] = await self._append([event], headers)
        return Requested(event, appended)

    async def ingest_ticks(self, command: IngestTicks, stamp: Stamp, headers: Headers | None = None) -> list[Appended]:
        """Append the whole batch, numbered per instrument in one unit."""
        validate_ticks(command, self.instruments, now=stamp.at, max_ahead=self.tick_max_ahead)
        counts: dict[str, int] = {}
        for tick in command.ticks:
            counts[tick.instrument] = counts.get(tick.instrument, 0) + 1
        async with self.store.unit() as unit:
            first = {symbol: await unit.next_sequence("ticks", symbol, n) for symbol, n in sorted(counts.items())}
            events = decide.ingest_ticks(command, self.instruments, first, stamp)
            return await self._append(events, headers)

    async def ingest_tick_frame(
        self,
        ticks: pl.DataFrame,
        source: str,
        stamp: Stamp,
        tick_at: tick_frames.TickAt,
        headers: Headers | None = None,
    ) -> list[Appended]:
        """``ingest_ticks`` for a frame of ticks (``tick_frames.TICKS``): validated, numbered and encoded as columns;
        ``tick_at(i)`` gives row i as a ``Tick`` to word the violations of the few rows that break a rule."""
        async with self._numbered(ticks, source, stamp, tick_at) as events:
            return self._landed(await self.log.append_frame(TickIngested, events, headers))

    @asynccontextmanager
    async def tick_load(self, source: str) -> AsyncIterator[Callable[[pl.DataFrame, Stamp, TickAt], Awaitable[None]]]:
        """A bulk load of tick frames (``tradecore ingest file``) in one unit: each frame given is validated like
        ``ingest_tick_frame``, numbered on from the frame before and handed to the log's load (``EventLog.load``),
        so the caller prepares the next frame while this one is encoded and produced.

        The unit holds the instruments' streams until Kafka has acknowledged every tick of the load, or failed to:
        whatever the block raised (a bad row that stops the file, a frame refused, an append Kafka did not confirm),
        the sequences it numbered are not handed out again (``CommandUnit``).
        """
        async with self.store.unit() as unit, self.log.load(TickIngested) as produce:

            async def add(ticks: pl.DataFrame, stamp: Stamp, tick_at: TickAt) -> None:
                tick_frames.validate(ticks, self.instruments, tick_at, now=stamp.at, max_ahead=self.tick_max_ahead)
                first = {
                    symbol: await unit.next_sequence("ticks", symbol, n)
                    for symbol, n in sorted(tick_frames.counts(ticks).items())
                }
                await produce(lambda: tick_frames.events(ticks, self.instruments, first, stamp, source))

            yield add

    @asynccontextmanager
    async def _numbered(
        self, ticks: pl.DataFrame, source: str, stamp: Stamp, tick_at: tick_frames.TickAt
    ) -> AsyncIterator[pl.DataFrame]:
        """The ticks as ``TickIngested`` rows, validated and numbered inside a unit."""
        tick_frames.validate(ticks, self.instruments, tick_at, now=stamp.at, max_ahead=self.tick_max_ahead)
        async with self.store.unit() as unit:
            first = {
                symbol: await unit.next_sequence("ticks", symbol, n)
                for symbol, n in sorted(tick_frames.counts(ticks).items())
            }
            yield tick_frames.events(ticks, self.instruments, first, stamp, source)

    async def _append(self, events: Sequence[Event], headers: Headers | None) -> list[Appended]:
        """Append all of ``events`` or raise why not."""
        return self._landed(await self.log.append(events, [headers] * len(events) if headers else None))

    @staticmethod
    def _landed(answers: Sequence[Appended | Exception]) -> list[Appended]:
        """Every answer when each says where its event landed; else the first error, raised."""
        if set(map(type, answers)) <= {Appended}:  # checked at C speed: a tick batch has up to 10,000 answers
            return cast(list[Appended], list(answers))
        raise next(answer for answer in answers if isinstance(answer, Exception))

    @staticmethod
    async def _owned(unit: CommandUnit, order_id: str, authorize: Callable[[OrderRef], None]) -> OrderRef:
        order = await unit.order(order_id)
        if order is None:
            raise UnknownOrder(f"no order {order_id}")
        authorize(order)
        return order
