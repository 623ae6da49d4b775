"""The command gateway: validate, decide, append — with idempotency and per-aggregate sequences kept in one
write-side transaction that commits only after Kafka has acknowledged the events.

Storage and the log are ports (``CommandStore``, ``EventLog``) so that this module stays free of Kafka and SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from commands import decide
from commands.decide import Stamp
from commands.errors import CommandError
from commands.instruments import InstrumentRegistry
from commands.models import AmendOrder, CancelOrder, IngestTicks, PlaceOrder, SetRiskLimits, ToggleKillSwitch
from commands.refs import OrderRef
from commands.validation import validate_amend, validate_place, validate_ticks
from schemas.events import Event


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event now is in the log."""

    topic: str
    partition: int
    offset: int


class EventLog(Protocol):
    async def append(self, events: Sequence[Event], headers: Mapping[str, str] | None = None) -> list[Appended]:
        """Append ``events`` in order and return once every one is acknowledged by all in-sync replicas."""
        ...


class CommandUnit(Protocol):
    """One write-side transaction."""

    async def claim_order(self, order: OrderRef, client_order_id: str, request_hash: str) -> Placed | None:
        """Reserve the order; None if reserved now, else the outcome of the earlier placement."""
        ...

    async def record_placed(self, order_id: str, appended: Appended) -> None:
        """Remember where the order's OrderPlaced landed."""
        ...

    async def order(self, order_id: str) -> OrderRef | None:
        """The order, locked against concurrent commands on it until the unit ends."""
        ...

    async def next_sequence(self, topic: str, aggregate_id: str, count: int = 1) -> int:
        """Reserve ``count`` sequence numbers of the aggregate's stream in ``topic``; the first of them."""
        ...


class CommandStore(Protocol):
    def unit(self) -> AbstractAsyncContextManager[CommandUnit]:
        """A transaction: committed when the block ends normally, rolled back when it raises."""
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
class Requested:
    """The outcome of a command on an existing order or account."""

    event: Event
    appended: Appended


def request_fingerprint(command: PlaceOrder) -> str:
    """What makes two placements the same request (JSON of the command, canonical)."""
    return hashlib.sha256(command.model_dump_json().encode()).hexdigest()


class CommandGateway:
    """Turns validated commands into appended events."""

    def __init__(self, log: EventLog, store: CommandStore, instruments: InstrumentRegistry) -> None:
        self.log = log
        self.store = store
        self.instruments = instruments

    async def place(self, command: PlaceOrder, stamp: Stamp, headers: Mapping[str, str] | None = None) -> Placed:
        """Append OrderPlaced once per (account, client_order_id); a repeat returns the first outcome."""
        validate_place(command, self.instruments)
        event = decide.place_order(command, stamp)
        ref = OrderRef(event.order_id, event.account_id, event.instrument, event.order_type)
        async with self.store.unit() as unit:
            earlier = await unit.claim_order(ref, command.client_order_id, request_fingerprint(command))
            if earlier is not None:
                return earlier
            [appended] = await self.log.append([event], headers)
            await unit.record_placed(event.order_id, appended)
        return Placed(event.order_id, appended)

    async def cancel(
        self,
        order_id: str,
        command: CancelOrder,
        stamp: Stamp,
        authorize: Callable[[OrderRef], None],
        headers: Mapping[str, str] | None = None,
    ) -> Requested:
        async with self.store.unit() as unit:
            order = await self._owned(unit, order_id, authorize)
            sequence = await unit.next_sequence("orders", order_id)
            event = decide.request_cancel(command, order, sequence, stamp)
            [appended] = await self.log.append([event], headers)
        return Requested(event, appended)

    async def amend(
        self,
        order_id: str,
        command: AmendOrder,
        stamp: Stamp,
        authorize: Callable[[OrderRef], None],
        headers: Mapping[str, str] | None = None,
    ) -> Requested:
        async with self.store.unit() as unit:
            order = await self._owned(unit, order_id, authorize)
            validate_amend(command, order, self.instruments)
            sequence = await unit.next_sequence("orders", order_id)
            event = decide.request_amend(command, order, sequence, stamp)
            [appended] = await self.log.append([event], headers)
        return Requested(event, appended)

    async def set_risk_limits(
        self,
        account_id: str,
        command: SetRiskLimits,
        set_by: str,
        stamp: Stamp,
        headers: Mapping[str, str] | None = None,
    ) -> Requested:
        async with self.store.unit() as unit:
            sequence = await unit.next_sequence("orders", account_id)
            event = decide.set_risk_limits(command, account_id, set_by, sequence, stamp)
            [appended] = await self.log.append([event], headers)
        return Requested(event, appended)

    async def toggle_kill_switch(
        self, command: ToggleKillSwitch, set_by: str, stamp: Stamp, headers: Mapping[str, str] | None = None
    ) -> Requested:
        async with self.store.unit() as unit:
            sequence = await unit.next_sequence("orders", command.account_id)
            event = decide.toggle_kill_switch(command, set_by, sequence, stamp)
            [appended] = await self.log.append([event], headers)
        return Requested(event, appended)

    async def ingest_ticks(
        self, command: IngestTicks, stamp: Stamp, headers: Mapping[str, str] | None = None
    ) -> list[Appended]:
        """Append the whole batch; per-instrument sequences stay gap-free because they commit with the batch."""
        validate_ticks(command, self.instruments)
        counts: dict[str, int] = {}
        for tick in command.ticks:
            counts[tick.instrument] = counts.get(tick.instrument, 0) + 1
        async with self.store.unit() as unit:
            first = {symbol: await unit.next_sequence("ticks", symbol, n) for symbol, n in sorted(counts.items())}
            events = decide.ingest_ticks(command, self.instruments, first, stamp)
            return await self.log.append(events, headers)

    @staticmethod
    async def _owned(unit: CommandUnit, order_id: str, authorize: Callable[[OrderRef], None]) -> OrderRef:
        order = await unit.order(order_id)
        if order is None:
            raise UnknownOrder(f"no order {order_id}")
        authorize(order)
        return order
