"""What the risk tests feed the engine: the real BTCUSDT quotes as ticks, and inputs stamped at given event times.

Every builder wraps one of ``tests.support.events``, setting only the event time, the ids that must differ between
events, and what the test is about.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from domain.instruments import InstrumentRegistry
from domain.risk import RiskEngine, RiskLimits
from schemas.events import (
    AmendRequested,
    CancelRequested,
    Event,
    KillSwitchToggled,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    PositionChanged,
    RiskLimitsSet,
    TickIngested,
)
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from tests.support import events as build

ACCOUNT = build.ACCOUNT
BTC = build.INSTRUMENT
# The test-support limits: max order 5 BTC / 250k, position 20, open 1M, daily loss 50k, 20/s, 500 bp, 5 s.
LIMITS = RiskLimits.from_event(build.risk_limits_set())
_IDS = uuid.UUID("0b6f3f7e-52c1-4a7e-9d0c-6c1f1f0a7e11")


def registry() -> InstrumentRegistry:
    """The project's instruments, and HALTED: BTCUSDT's rules, not tradable now."""
    instruments = InstrumentRegistry.from_file()
    return InstrumentRegistry([*instruments.values(), replace(instruments[BTC], symbol="HALTED", tradable=False)])


def engine(limits: RiskLimits = LIMITS) -> RiskEngine:
    return RiskEngine(limits, registry())


def feed(risk: RiskEngine, events: Iterable[Event]) -> list[Event]:
    """Everything ``risk`` derives from ``events``, in order."""
    return [out for event in events for out in risk.handle(event)]


# --- the real quotes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    at: datetime
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


def _decimal(value: float, places: str) -> Decimal:
    # The file stores floats; their shortest repr is the decimal the venue sent, cut to the schema's scale.
    return Decimal(repr(value)).quantize(Decimal(places))


@functools.cache
def quotes() -> tuple[Quote, ...]:
    """BTCUSDT best bid/ask at Binance, 2021-01-08 00:00:01-00:00:46 UTC (451 quotes), in time order."""
    frame = pl.read_parquet(market_file(BINANCE_QUOTES)).sort("timestamp")
    return tuple(
        Quote(
            at=row["timestamp"].astimezone(UTC),
            bid=_decimal(row["bid"], "0.01"),
            ask=_decimal(row["ask"], "0.01"),
            bid_size=_decimal(row["bid_size"], "0.00000001"),
            ask_size=_decimal(row["ask_size"], "0.00000001"),
        )
        for row in frame.iter_rows(named=True)
    )


def tick(quote: Quote, *, instrument: str = BTC, at: datetime | None = None) -> TickIngested:
    """The quote as the file ingest writes it; ``at`` moves it to another event time."""
    when = quote.at if at is None else at
    return build.tick_ingested(
        envelope=_envelope(TickIngested, when, f"{instrument}/{when.isoformat()}", aggregate_id=instrument),
        instrument=instrument,
        bid=quote.bid,
        ask=quote.ask,
        last=None,
        bid_size=quote.bid_size,
        ask_size=quote.ask_size,
        exchange_ts=when,
    )


def price_tick(instrument: str, price: str, at: datetime) -> TickIngested:
    """A trade-only tick (no bid/ask) of another instrument, for tests about quote currencies."""
    return build.tick_ingested(
        envelope=_envelope(TickIngested, at, f"{instrument}/{at.isoformat()}", aggregate_id=instrument),
        instrument=instrument,
        bid=None,
        ask=None,
        last=Decimal(price),
        bid_size=None,
        ask_size=None,
        exchange_ts=at,
    )


# --- inputs at event times -----------------------------------------------------------------------------------------


def _envelope(cls: type[Event], at: datetime, key: str, aggregate_id: str = ACCOUNT) -> Any:
    return build.envelope(
        cls,
        event_id=uuid.uuid5(_IDS, f"{cls.__name__}/{key}"),
        occurred_at=at,
        recorded_at=at + timedelta(microseconds=250),
        aggregate_id=aggregate_id,
    )


def placed(n: int, at: datetime, **fields: Any) -> OrderPlaced:
    """Order ``ord-<n>`` (client order id ``cli-<n>``): by default a limit buy of 0.25 BTC at 39433.00."""
    order_id = fields.pop("order_id", f"ord-{n}")
    defaults: dict[str, Any] = {"client_order_id": f"cli-{n}", "limit_price": Decimal("39433.00000000")}
    return build.order_placed(
        envelope=_envelope(OrderPlaced, at, order_id, aggregate_id=order_id),
        order_id=order_id,
        **{**defaults, **fields},
    )


def cancel(order_id: str, at: datetime, **fields: Any) -> CancelRequested:
    return build.cancel_requested(
        envelope=_envelope(CancelRequested, at, f"{order_id}/{at}"), order_id=order_id, **fields
    )


def amend(order_id: str, at: datetime, **fields: Any) -> AmendRequested:
    fields.setdefault("new_quantity", None)
    return build.amend_requested(
        envelope=_envelope(AmendRequested, at, f"{order_id}/{at}"), order_id=order_id, **fields
    )


def limits(at: datetime, **fields: Any) -> RiskLimitsSet:
    return build.risk_limits_set(envelope=_envelope(RiskLimitsSet, at, f"{fields}/{at}"), **fields)


def kill_switch(engaged: bool, at: datetime, **fields: Any) -> KillSwitchToggled:
    return build.kill_switch_toggled(
        envelope=_envelope(KillSwitchToggled, at, f"{engaged}/{at}"), engaged=engaged, **fields
    )


def filled(order_id: str, at: datetime, *, quantity: str, leaves: str, **fields: Any) -> OrderFilled:
    """A fill of ``quantity``, leaving ``leaves`` working (final when nothing is left)."""
    return build.order_filled(
        envelope=_envelope(OrderFilled, at, f"{order_id}/{at}", aggregate_id=BTC),
        order_id=order_id,
        fill_id=f"fill-{order_id}-{at.isoformat()}",
        fill_quantity=Decimal(quantity),
        leaves_quantity=Decimal(leaves),
        is_final=Decimal(leaves) == 0,
        **fields,
    )


def cancelled(order_id: str, at: datetime, **fields: Any) -> OrderCancelled:
    envelope = _envelope(OrderCancelled, at, f"{order_id}/{at}")
    return build.order_cancelled(envelope=envelope, order_id=order_id, **fields)


def expired(order_id: str, at: datetime, **fields: Any) -> OrderExpired:
    return build.order_expired(envelope=_envelope(OrderExpired, at, f"{order_id}/{at}"), order_id=order_id, **fields)


def amended(
    order_id: str, at: datetime, *, quantity: str, limit_price: str | None, leaves: str, **fields: Any
) -> OrderAmended:
    """The venue's report that it amended the order: its new total quantity, limit price and leaves."""
    return build.order_amended(
        envelope=_envelope(OrderAmended, at, f"{order_id}/{at}"),
        order_id=order_id,
        quantity=Decimal(quantity),
        limit_price=None if limit_price is None else Decimal(limit_price),
        leaves_quantity=Decimal(leaves),
        **fields,
    )


def position(at: datetime, *, quantity: str, realized: str, instrument: str = BTC, **fields: Any) -> PositionChanged:
    """The account's position in ``instrument`` after a fill, with its cumulative realized PnL."""
    return build.position_changed(
        envelope=_envelope(PositionChanged, at, f"{instrument}/{at}/{quantity}/{realized}"),
        instrument=instrument,
        quantity=Decimal(quantity),
        realized_pnl=Decimal(realized),
        **fields,
    )
