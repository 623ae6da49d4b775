"""tradecore's events as Python classes: a frozen, slotted dataclass per ``schemas/avro/tradecore.events.<Name>.avsc``.

Source of truth: the ``.avsc`` files. They are the contract — what the registry vets, what is released under
``schemas/released/`` and what a consumer in any language reads. These classes are the Python view of them,
written by hand rather than generated, because a hand-written class is ordinary reviewable code with exact types
(``Decimal``, ``datetime``, ``StrEnum``, ``UUID``) that mypy checks at every call site, with no generator to run
before an import works; generating them would move the Avro-to-Python type mapping into templates and still need
a test that the checked-in output is current. They cannot drift apart: ``schemas.codec`` compares each class with
its schema field by field (name, order, type, optionality, default) before converting a single event and refuses
a class that differs, and ``tests/schemas/test_event_classes.py`` runs that comparison for every event.

Values: prices and quantities are ``Decimal`` fitting ``decimal(18, 8)``, money ``decimal(28, 8)`` — never
float; times are timezone-aware UTC ``datetime`` (microseconds); enums are ``StrEnum``; ``event_id`` is a
``UUID``; every other id is a ``str``. Optional fields default to ``None``. Every field is keyword-only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from uuid import UUID

from schemas import avsc
from schemas.contract_errors import UnknownEventError

# --- enums ------------------------------------------------------------------------------------------------------


class Side(StrEnum):
    """Which way an order trades (``tradecore.events.Side``)."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """MARKET trades at the best price available; LIMIT at the limit or better (``tradecore.events.OrderType``)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    """How long an order stays working (``tradecore.events.TimeInForce``)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Liquidity(StrEnum):
    """Whether a fill added liquidity (MAKER) or took it (TAKER)."""

    MAKER = "MAKER"
    TAKER = "TAKER"


class Direction(StrEnum):
    """Which way a signal points."""

    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"


# --- the envelope and the base ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """Identity, time, causality and sequence: what every event carries (``tradecore.events.Envelope``)."""

    event_id: UUID
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str
    causation_id: str | None = None
    aggregate_id: str
    sequence: int
    schema_version: int


class Route(NamedTuple):
    """Where an event is written: its topic (before any prefix) and the field whose value is the record key."""

    topic: str
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event: the envelope, and where the event's schema and topic are."""

    envelope: Envelope

    @classmethod
    def fullname(cls) -> str:
        """The Avro record name, e.g. ``tradecore.events.OrderPlaced``."""
        return f"{avsc.NAMESPACE}.{cls.__name__}"

    @classmethod
    def avsc_path(cls) -> Path:
        """The ``.avsc`` file this class mirrors."""
        return avsc.path_of(cls.__name__)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The current schema, expanded (the envelope and enums inline); a fresh copy on each call."""
        return avsc.expanded(cls.__name__)

    @classmethod
    def schema_version(cls) -> int:
        """The released version N the current schema is; one past the last release while a change is unreleased."""
        return _schema_version(cls.__name__)

    @classmethod
    def route(cls) -> Route:
        """The topic (before any prefix) this event is written to, and the field its records are keyed by."""
        return ROUTES[cls.__name__]

    @property
    def key(self) -> str:
        """The record key: the value of the field the event's topic is keyed by (account or instrument)."""
        value: str = getattr(self, ROUTES[type(self).__name__].key)
        return value


# --- orders (key: account_id) -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(Event):
    """A client or strategy placed an order; pre-trade risk has not looked at it yet."""

    order_id: str
    account_id: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequested(Event):
    """The owner of an order asked for what is left of it to be cancelled."""

    order_id: str
    account_id: str
    instrument: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendRequested(Event):
    """The owner of an order asked for its quantity or limit price to be changed."""

    order_id: str
    account_id: str
    instrument: str
    new_quantity: Decimal | None = None
    new_limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimitsSet(Event):
    """The pre-trade risk limits of an account were set; they replace the previous ones entirely."""

    account_id: str
    max_order_quantity: Decimal
    max_order_notional: Decimal
    max_position_quantity: Decimal
    max_open_notional: Decimal
    daily_loss_limit: Decimal
    max_orders_per_second: int
    price_collar_bps: int
    reference_max_age_ms: int
    set_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitchToggled(Event):
    """The kill switch of an account was engaged (no new orders accepted) or released."""

    account_id: str
    engaged: bool
    reason: str
    set_by: str


# --- orders.checked (key: instrument) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Event):
    """Pre-trade risk accepted an order; it goes on to execution."""

    order_id: str
    account_id: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Event):
    """Pre-trade risk rejected an order; it never reaches execution."""

    order_id: str
    account_id: str
    client_order_id: str
    instrument: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAccepted(Event):
    """Pre-trade risk passed a cancel on to execution (on request, or because the kill switch was engaged)."""

    order_id: str
    account_id: str
    instrument: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendAccepted(Event):
    """Pre-trade risk checked an amend against the account's limits and passed it on to execution."""

    order_id: str
    account_id: str
    instrument: str
    new_quantity: Decimal | None = None
    new_limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendRejected(Event):
    """Pre-trade risk refused an amend; the order stays as it was."""

    order_id: str
    account_id: str
    instrument: str
    reason_code: str
    reason: str


# --- executions (key: instrument) -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Event):
    """An order traded, wholly or in part."""

    order_id: str
    account_id: str
    instrument: str
    side: Side
    fill_id: str
    fill_price: Decimal
    fill_quantity: Decimal
    cumulative_quantity: Decimal
    leaves_quantity: Decimal
    liquidity: Liquidity
    fee: Decimal
    fee_currency: str
    is_final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    """What was left of an order was cancelled; it trades no further."""

    order_id: str
    account_id: str
    instrument: str
    cancelled_quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRejected(Event):
    """A cancel request could not be carried out; the order is unchanged."""

    order_id: str
    account_id: str
    instrument: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(Event):
    """An order reached the end of its time in force with quantity left; it trades no further."""

    order_id: str
    account_id: str
    instrument: str
    expired_quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAmended(Event):
    """The venue changed a working order's quantity or limit price; its time priority is reset."""

    order_id: str
    account_id: str
    instrument: str
    quantity: Decimal
    limit_price: Decimal | None = None
    leaves_quantity: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAmendRejected(Event):
    """The venue could not apply an amend risk passed on (order unknown or done, quantity not above filled)."""

    order_id: str
    account_id: str
    instrument: str
    reason: str


# --- ticks, signals, positions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TickIngested(Event):
    """A market-data quote or trade was ingested from a venue or a recorded file."""

    instrument: str
    venue: str
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    last_size: Decimal | None = None
    exchange_ts: datetime
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalGenerated(Event):
    """An indicator produced a trading signal for an instrument."""

    instrument: str
    indicator: str
    direction: Direction
    strength: float
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionChanged(Event):
    """A fill changed an account's position in an instrument."""

    account_id: str
    instrument: str
    quantity: Decimal
    average_price: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    fill_id: str
    cost_method: str


# --- the registry -----------------------------------------------------------------------------------------------

# Event name -> (topic before any prefix, key field); matches streams.kafka.topics.TOPICS (a test checks it).
ROUTES: Mapping[str, Route] = MappingProxyType(
    {
        "OrderPlaced": Route("orders", "account_id"),
        "CancelRequested": Route("orders", "account_id"),
        "AmendRequested": Route("orders", "account_id"),
        "RiskLimitsSet": Route("orders", "account_id"),
        "KillSwitchToggled": Route("orders", "account_id"),
        "OrderAccepted": Route("orders.checked", "instrument"),
        "OrderRejected": Route("orders.checked", "instrument"),
        "CancelAccepted": Route("orders.checked", "instrument"),
        "AmendAccepted": Route("orders.checked", "instrument"),
        "AmendRejected": Route("orders.checked", "instrument"),
        "OrderFilled": Route("executions", "instrument"),
        "OrderCancelled": Route("executions", "instrument"),
        "CancelRejected": Route("executions", "instrument"),
        "OrderExpired": Route("executions", "instrument"),
        "OrderAmended": Route("executions", "instrument"),
        "OrderAmendRejected": Route("executions", "instrument"),
        "TickIngested": Route("ticks", "instrument"),
        "SignalGenerated": Route("signals", "instrument"),
        "PositionChanged": Route("positions", "account_id"),
    }
)

EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {
        cls.__name__: cls
        for cls in (
            OrderPlaced,
            CancelRequested,
            AmendRequested,
            RiskLimitsSet,
            KillSwitchToggled,
            OrderAccepted,
            OrderRejected,
            CancelAccepted,
            AmendAccepted,
            AmendRejected,
            OrderFilled,
            OrderCancelled,
            CancelRejected,
            OrderExpired,
            OrderAmended,
            OrderAmendRejected,
            TickIngested,
            SignalGenerated,
            PositionChanged,
        )
    }
)


def event_type(name: str) -> type[Event]:
    """The class of the event called ``name`` (``OrderPlaced`` or ``tradecore.events.OrderPlaced``)."""
    short = name.removeprefix(avsc.NAMESPACE + ".")
    try:
        return EVENT_TYPES[short]
    except KeyError:
        raise UnknownEventError(f"{name} is not a tradecore event", hint=f"known: {', '.join(EVENT_TYPES)}") from None


def events_on(topic: str) -> tuple[type[Event], ...]:
    """The event classes written to ``topic`` (its name before any prefix)."""
    found = tuple(EVENT_TYPES[name] for name, route in ROUTES.items() if route.topic == topic)
    if not found:
        topics = sorted({route.topic for route in ROUTES.values()})
        raise UnknownEventError(f"no events are written to topic {topic!r}", hint=f"event topics: {', '.join(topics)}")
    return found


def new_envelope(
    event: type[Event],
    *,
    event_id: UUID,
    occurred_at: datetime,
    recorded_at: datetime,
    correlation_id: str,
    aggregate_id: str,
    sequence: int,
    causation_id: str | None = None,
) -> Envelope:
    """An envelope for an event of class ``event``, with its ``event_type`` and current ``schema_version`` filled in.

    Ids and times are arguments, never made up here: processors stay deterministic by passing event time and ids
    derived from their input.
    """
    return Envelope(
        event_id=event_id,
        event_type=event.__name__,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
        aggregate_id=aggregate_id,
        sequence=sequence,
        schema_version=event.schema_version(),
    )


@functools.cache
def _schema_version(name: str) -> int:
    released = avsc.released_versions(name)
    current = avsc.expanded(name)
    for number, path in reversed(released.items()):
        if json.loads(path.read_text()) == current:
            return number
    return max(released, default=0) + 1
