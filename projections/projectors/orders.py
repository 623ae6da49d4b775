"""Read models of the order flow: orders (current state), order_events (the audit trail), fills, risk_rejections,
risk_limits.

An order's events come from three topics keyed differently (``orders`` by account, ``orders.checked`` and
``executions`` by instrument), so the order fold merges order-independently: the status follows the one order
lifecycle through ``domain.lifecycle.settle`` (an event read before its cause on another topic is applied as if the
cause had been, one read after its effect changes nothing), counts add up, descriptive fields are set once, and what
the venue says (executions, one partition per order, read in log order) overrides what the request said.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import ClassVar

import polars as pl

from domain.risk.limits import LIMITS
from projections import tables
from projections.projectors import order_fold
from projections.projectors.base import (
    AppendProjector,
    FoldProjector,
    Frames,
    Projector,
    Record,
    Row,
    Writer,
    events_with,
)
from projections.projectors.columns import envelope, payload

ORDER_TOPICS = ("orders", "orders.checked", "executions")
ORDER_EVENTS = events_with("order_id", ORDER_TOPICS)  # every event of an order names its order, account, instrument


class OrdersProjector(Projector):
    """Each order's current state: a batch's events reduced per order as columns (``order_fold``), then merged."""

    name = "orders"
    topics = ORDER_TOPICS
    events = ORDER_EVENTS
    tables = (tables.orders,)

    def project(self, frames: Frames, writer: Writer) -> None:
        found = order_fold.changes(frames)
        if found.is_empty():
            return
        current = writer.load_frame(tables.orders, [(order_id,) for order_id in found["order_id"]])
        writer.upsert_frame(tables.orders, order_fold.fold(current, found))


class OrderEventsProjector(AppendProjector):
    """Every event of every order, with its causation and correlation ids: the audit trail."""

    name = "order_events"
    topics = ORDER_TOPICS
    events = ORDER_EVENTS
    tables = (tables.order_events,)

    def columns(self, event: str, frame: pl.DataFrame) -> list[pl.Expr]:
        return [
            pl.col("order_id"),
            pl.col("account_id"),
            *(
                envelope(name)
                for name in (
                    "event_id",
                    "event_type",
                    "occurred_at",
                    "recorded_at",
                    "correlation_id",
                    "causation_id",
                    "aggregate_id",
                    "sequence",
                )
            ),
            payload(frame).alias("payload"),
        ]


class FillsProjector(AppendProjector):
    name = "fills"
    topics = ("executions",)
    events = frozenset({"OrderFilled"})
    tables = (tables.fills,)

    def columns(self, event: str, frame: pl.DataFrame) -> list[pl.Expr]:
        return [
            *map(pl.col, ("fill_id", "order_id", "account_id", "instrument", "side")),
            pl.col("fill_price").alias("price"),
            pl.col("fill_quantity").alias("quantity"),
            *map(pl.col, ("cumulative_quantity", "leaves_quantity", "liquidity", "fee", "fee_currency", "is_final")),
            envelope("occurred_at"),
        ]


class RiskRejectionsProjector(AppendProjector):
    """Orders and amends pre-trade risk refused, with the reason code."""

    name = "risk_rejections"
    topics = ("orders.checked",)
    kinds: ClassVar[dict[str, str]] = {"OrderRejected": "order", "AmendRejected": "amend"}
    events = frozenset(kinds)
    tables = (tables.risk_rejections,)

    def columns(self, event: str, frame: pl.DataFrame) -> list[pl.Expr]:
        return [
            *map(pl.col, ("order_id", "account_id", "instrument")),
            pl.lit(self.kinds[event]).alias("kind"),
            *map(pl.col, ("reason_code", "reason")),
            envelope("occurred_at"),
        ]


class RiskLimitsProjector(FoldProjector):
    """Each account's current limits and kill switch (both on ``orders``, keyed by account: log order)."""

    name = "risk_limits"
    topics = ("orders",)
    events = frozenset({"RiskLimitsSet", "KillSwitchToggled"})
    tables = (tables.risk_limits,)

    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        return ((record.event["account_id"],),)

    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        event = record.event
        row = dict(row) if row is not None else {"account_id": event["account_id"], "kill_switch_engaged": False}
        at = event["envelope"]["occurred_at"]
        if record.type == "RiskLimitsSet":
            for field in LIMITS:
                row[field] = event[field]
            row["limits_set_by"], row["limits_set_at"] = event["set_by"], at
        else:
            row["kill_switch_engaged"], row["kill_switch_reason"] = event["engaged"], event["reason"]
            row["kill_switch_set_by"], row["kill_switch_set_at"] = event["set_by"], at
        return row
