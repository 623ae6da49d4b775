"""The read models as SQLAlchemy tables without a schema: one namespace's schema is chosen per connection
(``schema_translate_map``), so the same definitions serve the live schema and any shadow or scratch schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Identity,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.types import TypeEngine

from domain.lifecycle import OrderStatus
from domain.risk.limits import LIMITS, Kind

metadata = MetaData()

PRICE = Numeric(38, 8)  # the events' decimal(18, 8) prices and quantities, decimal(28, 8) money: exact
EXACT = Numeric()  # derived values (a mid price, a mark-to-market) whose every digit is kept


_LIMIT_TYPES: dict[Kind, TypeEngine[Any]] = {
    Kind.QUANTITY: PRICE,
    Kind.MONEY: PRICE,
    Kind.COUNT: Integer(),
    Kind.MILLIS: BigInteger(),
}
ORDER_STATUS_KNOWN = "status IN ({})".format(", ".join(f"'{s}'" for s in OrderStatus))


def _at(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _source() -> list[Column[object]]:
    """Where an appended row's event sits in the log: its identity in an append-only read model."""
    return [
        Column("topic", String, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
    ]


orders = Table(
    "orders",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("account_id", String, nullable=False),
    Column("client_order_id", String),
    Column("instrument", String, nullable=False),
    Column("side", String),
    Column("order_type", String),
    Column("time_in_force", String),
    Column("quantity", PRICE),
    Column("limit_price", PRICE),
    Column("status", String, nullable=False),
    Column("filled_quantity", PRICE, nullable=False),
    Column("leaves_quantity", PRICE),
    Column("reason_code", String),
    Column("reason", String),
    Column("placed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("amended_at", DateTime(timezone=True)),
    Column("events", Integer, nullable=False),
    # The one spelling of the order lifecycle; revision 0002 put it on schemas built before.
    CheckConstraint(ORDER_STATUS_KNOWN, name="orders_status_known"),
)

order_events = Table(
    "order_events",
    metadata,
    *_source(),
    Column("order_id", String, nullable=False, index=True),
    Column("account_id", String, nullable=False),
    Column("event_id", String, nullable=False),
    Column("event_type", String, nullable=False),
    _at("occurred_at"),
    _at("recorded_at"),
    Column("correlation_id", String, nullable=False),
    Column("causation_id", String),
    Column("aggregate_id", String, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("payload", JSON, nullable=False),  # as written, never searched inside: json, not jsonb (revision 0004)
    PrimaryKeyConstraint("topic", "partition", "offset"),
)

fills = Table(
    "fills",
    metadata,
    *_source(),
    Column("fill_id", String, nullable=False, index=True),  # not unique: a replayed duplicate must not stop the model
    Column("order_id", String, nullable=False, index=True),
    Column("account_id", String, nullable=False, index=True),
    Column("instrument", String, nullable=False),
    Column("side", String, nullable=False),
    Column("price", PRICE, nullable=False),
    Column("quantity", PRICE, nullable=False),
    Column("cumulative_quantity", PRICE, nullable=False),
    Column("leaves_quantity", PRICE, nullable=False),
    Column("liquidity", String, nullable=False),
    Column("fee", PRICE, nullable=False),
    Column("fee_currency", String, nullable=False),
    Column("is_final", Boolean, nullable=False),
    _at("occurred_at"),
    PrimaryKeyConstraint("topic", "partition", "offset"),
)


def _position() -> list[Column[object]]:
    """An account's position in an instrument, as the positions processor publishes it."""
    return [
        Column("account_id", String, nullable=False),
        Column("instrument", String, nullable=False),
        Column("quantity", PRICE, nullable=False),
        Column("average_price", PRICE, nullable=False),
        Column("realized_pnl", PRICE, nullable=False),
        Column("fees_paid", PRICE, nullable=False),
    ]


positions = Table(
    "positions",
    metadata,
    *_position(),
    Column("cost_method", String, nullable=False),
    Column("last_fill_id", String, nullable=False),
    _at("updated_at"),
    PrimaryKeyConstraint("account_id", "instrument"),
)

marks = Table(
    "marks",
    metadata,
    Column("instrument", String, primary_key=True),
    Column("price", EXACT, nullable=False),
    _at("marked_at"),
)

pnl = Table(
    "pnl",
    metadata,
    *_position(),
    Column("mark_price", EXACT),
    _at("marked_at", nullable=True),
    Column("unrealized_pnl", PRICE, nullable=False),
    Column("total_pnl", PRICE, nullable=False),
    PrimaryKeyConstraint("account_id", "instrument"),
)

candles = Table(
    "candles",
    metadata,
    Column("instrument", String, nullable=False),
    Column("timeframe", String, nullable=False),
    _at("bucket_start"),
    Column("open", EXACT, nullable=False),
    Column("high", EXACT, nullable=False),
    Column("low", EXACT, nullable=False),
    Column("close", EXACT, nullable=False),
    Column("volume", PRICE, nullable=False),
    Column("ticks", Integer, nullable=False),
    PrimaryKeyConstraint("instrument", "timeframe", "bucket_start"),
)

signals_latest = Table(
    "signals_latest",
    metadata,
    Column("instrument", String, nullable=False),
    Column("indicator", String, nullable=False),
    Column("direction", String, nullable=False),
    Column("strength", Double, nullable=False),  # the event's own float: an indicator reading, not an amount
    Column("indicator_values", JSONB, nullable=False),
    _at("occurred_at"),
    PrimaryKeyConstraint("instrument", "indicator"),
)

risk_limits = Table(
    "risk_limits",
    metadata,
    Column("account_id", String, primary_key=True),
    *(Column(name, _LIMIT_TYPES[limit.kind]) for name, limit in LIMITS.items()),
    Column("limits_set_by", String),
    Column("limits_set_at", DateTime(timezone=True)),
    Column("kill_switch_engaged", Boolean, nullable=False),
    Column("kill_switch_reason", String),
    Column("kill_switch_set_by", String),
    Column("kill_switch_set_at", DateTime(timezone=True)),
)

risk_rejections = Table(
    "risk_rejections",
    metadata,
    *_source(),
    Column("order_id", String, nullable=False),
    Column("account_id", String, nullable=False, index=True),
    Column("instrument", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("reason_code", String, nullable=False),
    Column("reason", String, nullable=False),
    _at("occurred_at"),
    PrimaryKeyConstraint("topic", "partition", "offset"),
)

projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("projection", String, nullable=False),
    Column("topic", String, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),  # the next offset to read: everything before it is in the rows
    _at("updated_at"),
    PrimaryKeyConstraint("projection", "topic", "partition"),
)

live_changes = Table(
    "live_changes",
    metadata,
    # The position of a change in the live feed (GET /v1/stream's event id): the runner takes the feed's lock before
    # numbering a batch's changes, so ids grow in commit order and a reader that saw id N has seen every id below it.
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", String, nullable=False),  # order, fill, position, pnl, candle, signal, rejection, limits
    Column("account_id", String),  # None for market data (candles, signals), which every reader sees
    Column("committed_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Column("row", JSONB, nullable=False),  # the read-model row as it is after the change, as the queries answer it
)
