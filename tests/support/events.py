"""A valid example of every event, for any test that needs one.

Each builder takes keyword overrides of the event's own fields (``envelope`` too), so a test states only what it is
about: ``order_placed(quantity=Decimal("0"))``. Decimals carry the schema's full scale (8 places) and times carry
microseconds, so an event read back compares equal to the one written, repr and all.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from schemas.events import (
    AmendAccepted,
    AmendRejected,
    AmendRequested,
    CancelAccepted,
    CancelRejected,
    CancelRequested,
    Direction,
    Envelope,
    Event,
    KillSwitchToggled,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderAmendRejected,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderType,
    PositionChanged,
    RiskLimitsSet,
    Side,
    SignalGenerated,
    TickIngested,
    TimeInForce,
    new_envelope,
)

E = TypeVar("E", bound=Event)

ACCOUNT = "acc-7"
INSTRUMENT = "BTCUSDT"
ORDER = "ord-1f3a"
CLIENT_ORDER = "cli-0001"
# Event time with microseconds; recorded a little later, as a writer would.
OCCURRED_AT = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def envelope(event: type[Event], **overrides: Any) -> Envelope:
    """An envelope for ``event`` with fixed ids and times (tests stay deterministic); any field may be overridden."""
    fields: dict[str, Any] = {
        "event_id": uuid.UUID("6f1c2a8e-3b7d-4c55-9e0a-1d2b3c4d5e6f"),
        "occurred_at": OCCURRED_AT,
        "recorded_at": OCCURRED_AT + timedelta(microseconds=250),
        "correlation_id": "corr-42",
        "aggregate_id": ACCOUNT,
        "sequence": 1,
        "causation_id": None,
    }
    return dataclasses.replace(new_envelope(event, **fields), **overrides)


def _build(cls: type[E], fields: dict[str, Any], overrides: dict[str, Any]) -> E:
    return cls(**{"envelope": envelope(cls), **fields, **overrides})


def order_placed(**overrides: Any) -> OrderPlaced:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "client_order_id": CLIENT_ORDER,
        "instrument": INSTRUMENT,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
        "quantity": Decimal("0.25000000"),
        "limit_price": Decimal("40123.45000000"),
    }
    return _build(OrderPlaced, fields, overrides)


def cancel_requested(**overrides: Any) -> CancelRequested:
    fields = {"order_id": ORDER, "account_id": ACCOUNT, "instrument": INSTRUMENT, "reason": "changed my mind"}
    return _build(CancelRequested, fields, overrides)


def amend_requested(**overrides: Any) -> AmendRequested:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "new_quantity": Decimal("0.50000000"),
        "new_limit_price": None,
    }
    return _build(AmendRequested, fields, overrides)


def risk_limits_set(**overrides: Any) -> RiskLimitsSet:
    fields = {
        "account_id": ACCOUNT,
        "max_order_quantity": Decimal("5.00000000"),
        "max_order_notional": Decimal("250000.00000000"),
        "max_position_quantity": Decimal("20.00000000"),
        "max_open_notional": Decimal("1000000.00000000"),
        "daily_loss_limit": Decimal("50000.00000000"),
        "max_orders_per_second": 20,
        "price_collar_bps": 500,
        "reference_max_age_ms": 5_000,
        "set_by": "risk-officer",
    }
    return _build(RiskLimitsSet, fields, overrides)


def kill_switch_toggled(**overrides: Any) -> KillSwitchToggled:
    fields = {"account_id": ACCOUNT, "engaged": True, "reason": "runaway strategy", "set_by": "risk-officer"}
    return _build(KillSwitchToggled, fields, overrides)


def order_accepted(**overrides: Any) -> OrderAccepted:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "client_order_id": CLIENT_ORDER,
        "instrument": INSTRUMENT,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
        "quantity": Decimal("0.25000000"),
        "limit_price": Decimal("40123.45000000"),
    }
    return _build(OrderAccepted, fields, overrides)


def order_rejected(**overrides: Any) -> OrderRejected:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "client_order_id": CLIENT_ORDER,
        "instrument": INSTRUMENT,
        "reason_code": "MAX_ORDER_QUANTITY",
        "reason": "quantity 6.00000000 exceeds max_order_quantity 5.00000000",
    }
    return _build(OrderRejected, fields, overrides)


def cancel_accepted(**overrides: Any) -> CancelAccepted:
    fields = {"order_id": ORDER, "account_id": ACCOUNT, "instrument": INSTRUMENT, "reason": "KILL_SWITCH"}
    return _build(CancelAccepted, fields, overrides)


def amend_accepted(**overrides: Any) -> AmendAccepted:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "new_quantity": Decimal("0.50000000"),
        "new_limit_price": None,
    }
    return _build(AmendAccepted, fields, overrides)


def amend_rejected(**overrides: Any) -> AmendRejected:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "reason_code": "MAX_ORDER_QUANTITY",
        "reason": "new quantity 6.00000000 exceeds max_order_quantity 5.00000000",
    }
    return _build(AmendRejected, fields, overrides)


def order_amended(**overrides: Any) -> OrderAmended:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "quantity": Decimal("0.50000000"),
        "limit_price": Decimal("40100.00000000"),
        "leaves_quantity": Decimal("0.40000000"),
    }
    return _build(OrderAmended, fields, overrides)


def order_amend_rejected(**overrides: Any) -> OrderAmendRejected:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "reason": "new quantity 0.10000000 is not above the filled quantity 0.10000000",
    }
    return _build(OrderAmendRejected, fields, overrides)


def order_filled(**overrides: Any) -> OrderFilled:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "side": Side.BUY,
        "fill_id": "fill-1",
        "fill_price": Decimal("40120.00000000"),
        "fill_quantity": Decimal("0.10000000"),
        "cumulative_quantity": Decimal("0.10000000"),
        "leaves_quantity": Decimal("0.15000000"),
        "liquidity": Liquidity.TAKER,
        "fee": Decimal("4.01200000"),
        "fee_currency": "USDT",
        "is_final": False,
    }
    return _build(OrderFilled, fields, overrides)


def order_cancelled(**overrides: Any) -> OrderCancelled:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "cancelled_quantity": Decimal("0.15000000"),
        "reason": "requested by owner",
    }
    return _build(OrderCancelled, fields, overrides)


def cancel_rejected(**overrides: Any) -> CancelRejected:
    fields = {"order_id": ORDER, "account_id": ACCOUNT, "instrument": INSTRUMENT, "reason": "order already filled"}
    return _build(CancelRejected, fields, overrides)


def order_expired(**overrides: Any) -> OrderExpired:
    fields = {
        "order_id": ORDER,
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "expired_quantity": Decimal("0.25000000"),
        "reason": "FOK not fillable in full",
    }
    return _build(OrderExpired, fields, overrides)


def tick_ingested(**overrides: Any) -> TickIngested:
    fields = {
        "instrument": INSTRUMENT,
        "venue": "binance",
        "bid": Decimal("40119.99000000"),
        "ask": Decimal("40120.01000000"),
        "last": Decimal("40120.00000000"),
        "bid_size": Decimal("1.50000000"),
        "ask_size": Decimal("0.75000000"),
        "last_size": None,
        "exchange_ts": OCCURRED_AT - timedelta(microseconds=1_500),
        "source": "file:binance-btcusdt-quotes",
    }
    return _build(TickIngested, fields, overrides)


def signal_generated(**overrides: Any) -> SignalGenerated:
    fields = {
        "instrument": INSTRUMENT,
        "indicator": "sma_cross(20,50)",
        "direction": Direction.LONG,
        "strength": 0.75,
        "values": {"sma_20": 40125.5, "sma_50": 40010.25},
    }
    return _build(SignalGenerated, fields, overrides)


def position_changed(**overrides: Any) -> PositionChanged:
    fields = {
        "account_id": ACCOUNT,
        "instrument": INSTRUMENT,
        "quantity": Decimal("-0.10000000"),
        "average_price": Decimal("40120.00000000"),
        "realized_pnl": Decimal("-12.34567890"),
        "fees_paid": Decimal("4.01200000"),
        "fill_id": "fill-1",
        "cost_method": "AVERAGE_COST",
    }
    return _build(PositionChanged, fields, overrides)


def every_event() -> list[Event]:
    """One valid example of each event type, in the order of ``schemas.events.EVENT_TYPES``."""
    return [
        order_placed(),
        cancel_requested(),
        amend_requested(),
        risk_limits_set(),
        kill_switch_toggled(),
        order_accepted(),
        order_rejected(),
        cancel_accepted(),
        amend_accepted(),
        amend_rejected(),
        order_filled(),
        order_cancelled(),
        cancel_rejected(),
        order_expired(),
        order_amended(),
        order_amend_rejected(),
        tick_ingested(),
        signal_generated(),
        position_changed(),
    ]


def edge_cases() -> list[Event]:
    """Values at the edges of their types: the largest decimals, the smallest steps, nulls, empty maps, unicode."""
    return [
        order_placed(
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC,
            quantity=Decimal("9999999999.99999999"),
            limit_price=None,
        ),
        order_placed(side=Side.SELL, time_in_force=TimeInForce.FOK, quantity=Decimal("0.00000001")),
        cancel_requested(reason=None, envelope=envelope(CancelRequested, causation_id="evt-9", sequence=2**40)),
        amend_requested(new_quantity=None, new_limit_price=Decimal("0.00000001")),
        risk_limits_set(max_open_notional=Decimal("99999999999999999999.99999999"), daily_loss_limit=Decimal("0E-8")),
        order_filled(fee=Decimal("-0.01000000"), liquidity=Liquidity.MAKER, is_final=True),
        tick_ingested(bid=None, ask=None, bid_size=None, ask_size=None, last_size=Decimal("0.00100000")),
        signal_generated(direction=Direction.FLAT, strength=0.0, values={}, indicator="rsi(14) — ünïcode"),
        position_changed(
            quantity=Decimal("0E-8"), realized_pnl=Decimal("-99999999999999999999.99999999"), cost_method="FIFO"
        ),
    ]
