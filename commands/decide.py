"""Pure decisions: a validated command and what the write side knows -> the events to append.

No clock, no randomness, no I/O: the time and causal chain come in a ``Stamp``; ids are derived from what
identifies the thing (an order id from its account and client order id; an event id from its stream position),
so a retried command produces the very same event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from commands.models import AmendOrder, CancelOrder, IngestTicks, PlaceOrder, SetRiskLimits, ToggleKillSwitch
from commands.refs import OrderRef
from domain.derive import ID_NAMESPACE, event_id_for
from domain.instruments import Instrument
from schemas.events import (
    AmendRequested,
    CancelRequested,
    Envelope,
    Event,
    KillSwitchToggled,
    OrderPlaced,
    RiskLimitsSet,
    TickIngested,
    new_envelope,
)


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a command arrived and the causal chain it belongs to."""

    at: datetime
    correlation_id: str
    causation_id: str | None = None


def order_id_for(account_id: str, client_order_id: str) -> str:
    """The order id: the same for every repeat of the same (account, client order id)."""
    return str(uuid.uuid5(ID_NAMESPACE, f"order/{account_id}/{client_order_id}"))


def _envelope(
    event: type[Event], aggregate_id: str, sequence: int, stamp: Stamp, occurred_at: datetime | None = None
) -> Envelope:
    return new_envelope(
        event,
        event_id=event_id_for(event, aggregate_id, sequence),
        occurred_at=occurred_at or stamp.at,
        recorded_at=stamp.at,
        correlation_id=stamp.correlation_id,
        causation_id=stamp.causation_id,
        aggregate_id=aggregate_id,
        sequence=sequence,
    )


def place_order(command: PlaceOrder, stamp: Stamp) -> OrderPlaced:
    """A new order: the first event of its aggregate."""
    order_id = order_id_for(command.account_id, command.client_order_id)
    return OrderPlaced(
        envelope=_envelope(OrderPlaced, order_id, 1, stamp),
        order_id=order_id,
        account_id=command.account_id,
        client_order_id=command.client_order_id,
        instrument=command.instrument,
        side=command.side,
        order_type=command.order_type,
        time_in_force=command.time_in_force,
        quantity=command.quantity,
        limit_price=command.limit_price,
    )


def request_cancel(command: CancelOrder, order: OrderRef, sequence: int, stamp: Stamp) -> CancelRequested:
    return CancelRequested(
        envelope=_envelope(CancelRequested, order.order_id, sequence, stamp),
        order_id=order.order_id,
        account_id=order.account_id,
        instrument=order.instrument,
        reason=command.reason,
    )


def request_amend(command: AmendOrder, order: OrderRef, sequence: int, stamp: Stamp) -> AmendRequested:
    return AmendRequested(
        envelope=_envelope(AmendRequested, order.order_id, sequence, stamp),
        order_id=order.order_id,
        account_id=order.account_id,
        instrument=order.instrument,
        new_quantity=command.new_quantity,
        new_limit_price=command.new_limit_price,
    )


def set_risk_limits(command: SetRiskLimits, account_id: str, set_by: str, sequence: int, stamp: Stamp) -> RiskLimitsSet:
    return RiskLimitsSet(
        envelope=_envelope(RiskLimitsSet, account_id, sequence, stamp),
        account_id=account_id,
        set_by=set_by,
        **command.model_dump(),
    )


def toggle_kill_switch(command: ToggleKillSwitch, set_by: str, sequence: int, stamp: Stamp) -> KillSwitchToggled:
    return KillSwitchToggled(
        envelope=_envelope(KillSwitchToggled, command.account_id, sequence, stamp),
        account_id=command.account_id,
        engaged=command.engaged,
        reason=command.reason,
        set_by=set_by,
    )


def ingest_ticks(
    command: IngestTicks, instruments: Mapping[str, Instrument], first_sequence: Mapping[str, int], stamp: Stamp
) -> Sequence[TickIngested]:
    """One TickIngested per tick, numbered per instrument from ``first_sequence``; event time is the venue's."""
    next_sequence = dict(first_sequence)
    events = []
    for tick in command.ticks:
        sequence = next_sequence[tick.instrument]
        next_sequence[tick.instrument] = sequence + 1
        at = tick.exchange_ts.astimezone(UTC)  # the same instant, as events keep it, whatever offset it was given in
        events.append(
            TickIngested(
                envelope=_envelope(TickIngested, tick.instrument, sequence, stamp, occurred_at=at),
                instrument=tick.instrument,
                venue=tick.venue or instruments[tick.instrument].venue,
                bid=tick.bid,
                ask=tick.ask,
                last=tick.last,
                bid_size=tick.bid_size,
                ask_size=tick.ask_size,
                last_size=tick.last_size,
                exchange_ts=at,
                source=command.source,
            )
        )
    return events
