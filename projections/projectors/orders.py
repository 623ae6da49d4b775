"""Read models of the order flow: orders (current state), order_events (the audit trail), fills, risk_rejections,
risk_limits.

An order's events come from three topics keyed differently (``orders`` by account, ``orders.checked`` and
``executions`` by instrument), so the order fold merges order-independently: the status only moves up
``STATUS_RANK``, counts add up, descriptive fields are set once, and what the venue says (executions, one
partition per order, read in log order) overrides what the request said.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from decimal import Decimal
from typing import Any, ClassVar

from projections import tables
from projections.projectors.base import AppendProjector, FoldProjector, Record, Row, payload
from schemas.events import (
    AmendRejected,
    KillSwitchToggled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    RiskLimitsSet,
)

ORDER_TOPICS = ("orders", "orders.checked", "executions")

STATUS_RANK = {
    "PENDING": 0,  # placed; risk has not decided
    "ACCEPTED": 1,
    "PARTIALLY_FILLED": 2,
    "FILLED": 3,
    "CANCELLED": 3,
    "EXPIRED": 3,
    "REJECTED": 3,
}


def _status(record: Record) -> str | None:
    event = record.event
    if isinstance(event, OrderFilled):
        return "FILLED" if event.leaves_quantity == 0 else "PARTIALLY_FILLED"
    return {
        OrderPlaced: "PENDING",
        OrderAccepted: "ACCEPTED",
        OrderRejected: "REJECTED",
        OrderCancelled: "CANCELLED",
        OrderExpired: "EXPIRED",
    }.get(type(event))


class OrdersProjector(FoldProjector):
    name = "orders"
    topics = ORDER_TOPICS
    tables = (tables.orders,)

    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        order_id = getattr(record.event, "order_id", None)
        return () if order_id is None else ((order_id,),)

    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        event = record.event
        at = event.envelope.occurred_at
        of_order: Any = event  # every event of an order names its order, account and instrument
        row = (
            dict(row)
            if row is not None
            else {
                "order_id": of_order.order_id,
                "account_id": of_order.account_id,
                "instrument": of_order.instrument,
                "status": "PENDING",
                "filled_quantity": Decimal(0),
                "updated_at": at,
                "events": 0,
            }
        )
        row["events"] += 1
        row["updated_at"] = max(row["updated_at"], at)
        status = _status(record)
        if status is not None and STATUS_RANK[status] > STATUS_RANK[row["status"]]:
            row["status"] = status
        if isinstance(event, OrderPlaced | OrderAccepted):
            for field in ("client_order_id", "side", "order_type", "time_in_force"):
                if row.get(field) is None:
                    row[field] = str(getattr(event, field))
            if row.get("amended_at") is None:  # an amend the venue applied outranks the request
                row["quantity"], row["limit_price"] = event.quantity, event.limit_price
            if row.get("leaves_quantity") is None:
                row["leaves_quantity"] = event.quantity
            if isinstance(event, OrderPlaced):
                row["placed_at"] = at
        elif isinstance(event, OrderRejected):
            row["reason_code"], row["reason"] = event.reason_code, event.reason
        elif isinstance(event, OrderFilled):
            row["filled_quantity"] = max(row["filled_quantity"], event.cumulative_quantity)
            row["leaves_quantity"] = event.leaves_quantity
        elif isinstance(event, OrderCancelled | OrderExpired):
            row["leaves_quantity"] = Decimal(0)
            row["reason"] = event.reason
        elif isinstance(event, OrderAmended):
            row["quantity"], row["limit_price"] = event.quantity, event.limit_price
            row["leaves_quantity"] = event.leaves_quantity
            row["amended_at"] = at
        return row


class OrderEventsProjector(AppendProjector):
    """Every event of every order, with its causation and correlation ids: the audit trail."""

    name = "order_events"
    topics = ORDER_TOPICS
    tables = (tables.order_events,)

    def row(self, record: Record) -> Row | None:
        event, envelope = record.event, record.event.envelope
        order_id = getattr(event, "order_id", None)
        if order_id is None:
            return None
        return {
            "order_id": order_id,
            "account_id": getattr(event, "account_id"),  # noqa: B009 - every event of an order carries it
            "event_id": str(envelope.event_id),
            "event_type": envelope.event_type,
            "occurred_at": envelope.occurred_at,
            "recorded_at": envelope.recorded_at,
            "correlation_id": envelope.correlation_id,
            "causation_id": envelope.causation_id,
            "aggregate_id": envelope.aggregate_id,
            "sequence": envelope.sequence,
            "payload": payload(event),
        }


class FillsProjector(AppendProjector):
    name = "fills"
    topics = ("executions",)
    tables = (tables.fills,)

    def row(self, record: Record) -> Row | None:
        fill = record.event
        if not isinstance(fill, OrderFilled):
            return None
        return {
            "fill_id": fill.fill_id,
            "order_id": fill.order_id,
            "account_id": fill.account_id,
            "instrument": fill.instrument,
            "side": fill.side.value,
            "price": fill.fill_price,
            "quantity": fill.fill_quantity,
            "cumulative_quantity": fill.cumulative_quantity,
            "leaves_quantity": fill.leaves_quantity,
            "liquidity": fill.liquidity.value,
            "fee": fill.fee,
            "fee_currency": fill.fee_currency,
            "is_final": fill.is_final,
            "occurred_at": fill.envelope.occurred_at,
        }


class RiskRejectionsProjector(AppendProjector):
    """Orders and amends pre-trade risk refused, with the reason code."""

    name = "risk_rejections"
    topics = ("orders.checked",)
    tables = (tables.risk_rejections,)
    kinds: ClassVar[dict[type, str]] = {OrderRejected: "order", AmendRejected: "amend"}

    def row(self, record: Record) -> Row | None:
        event = record.event
        if not isinstance(event, OrderRejected | AmendRejected):
            return None
        return {
            "order_id": event.order_id,
            "account_id": event.account_id,
            "instrument": event.instrument,
            "kind": self.kinds[type(event)],
            "reason_code": event.reason_code,
            "reason": event.reason,
            "occurred_at": event.envelope.occurred_at,
        }


class RiskLimitsProjector(FoldProjector):
    """Each account's current limits and kill switch (both on ``orders``, keyed by account: log order)."""

    name = "risk_limits"
    topics = ("orders",)
    tables = (tables.risk_limits,)

    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        event = record.event
        return ((event.account_id,),) if isinstance(event, RiskLimitsSet | KillSwitchToggled) else ()

    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        event = record.event
        assert isinstance(event, RiskLimitsSet | KillSwitchToggled)
        row = dict(row) if row is not None else {"account_id": event.account_id, "kill_switch_engaged": False}
        at = event.envelope.occurred_at
        if isinstance(event, RiskLimitsSet):
            for field in (
                "max_order_quantity",
                "max_order_notional",
                "max_position_quantity",
                "max_open_notional",
                "daily_loss_limit",
                "max_orders_per_second",
                "price_collar_bps",
                "reference_max_age_ms",
            ):
                row[field] = getattr(event, field)
            row["limits_set_by"], row["limits_set_at"] = event.set_by, at
        else:
            row["kill_switch_engaged"], row["kill_switch_reason"] = event.engaged, event.reason
            row["kill_switch_set_by"], row["kill_switch_set_at"] = event.set_by, at
        return row
