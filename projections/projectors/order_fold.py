"""The ``orders`` read model folded a batch at a time: a batch's events of each order reduced to one change, as
columns, then merged with the order's row — Python per order touched, not per event.

The reduction is what folding the order's events one by one gives (``tests/projections/test_order_fold.py`` holds
it to that on every interleaving of sample histories and every split into batches):

- ``events`` add up, ``updated_at`` is the latest event time, ``filled_quantity`` the greatest cumulative quantity;
- the descriptive fields (client order id, side, type, time in force) are set once, by the first request or
  acceptance that has them;
- quantity and limit price are the last amend the venue applied, else the last request or acceptance;
- ``leaves_quantity`` is the venue's last word (a fill's or an amend's leaves, nothing after a cancel or expiry),
  else the first request's quantity;
- the reason is the last rejection's, cancellation's or expiry's;
- the status follows ``domain.lifecycle.settle`` over the order's status-changing events in batch order (an event
  read before its cause on another topic settles as if the cause had been; see that module).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import polars as pl

from domain.lifecycle import INITIAL, UNCHANGING, InvalidTransition, OrderStatus, Trigger, settle
from projections.projectors.base import Frames, Row
from projections.projectors.columns import envelope
from schemas.batch import INDEX

log = logging.getLogger(__name__)

DESCRIPTIVE = ("client_order_id", "side", "order_type", "time_in_force")
_AMOUNT = pl.Decimal(18, 8)
# The fields the reduction reads, of whichever order events have them; a batch without any has a column of nulls.
_FIELDS: dict[str, pl.DataType] = {
    **dict.fromkeys(DESCRIPTIVE, pl.String()),
    **dict.fromkeys(("quantity", "limit_price", "leaves_quantity", "cumulative_quantity"), _AMOUNT),
    "is_final": pl.Boolean(),
    "reason_code": pl.String(),
    "reason": pl.String(),
}
_TRIGGERS = {t.value: t for t in Trigger}
_STATUSES = {s.value: s for s in OrderStatus}  # a look-up: OrderStatus(text) costs an enum call per order
_STILL = [t.value for t in UNCHANGING]  # never move a status: left out of the reduction

kind = pl.col("type")
_REQUEST = kind.is_in(["OrderPlaced", "OrderAccepted"])
_AMEND = kind == "OrderAmended"
_REJECT = kind == "OrderRejected"
_ENDS = kind.is_in(["OrderCancelled", "OrderExpired"])
_REASONED = _REJECT | _ENDS
_FILL = kind == "OrderFilled"
# What the venue last said is left of the order: a fill's or an amend's leaves; nothing after it ended.
_LEAVES = pl.when(_FILL | _AMEND).then(pl.col("leaves_quantity")).when(_ENDS).then(pl.lit(Decimal(0)).cast(_AMOUNT))
_TRIGGER = (
    pl.when(_FILL & (pl.col("is_final") | (pl.col("leaves_quantity") <= 0)))
    .then(pl.lit(Trigger.FILLED.value))
    .when(_FILL)
    .then(pl.lit(Trigger.PARTIALLY_FILLED.value))
    .otherwise(kind)
)


def changes(frames: Frames) -> pl.DataFrame:
    """One row per order the batch's ``frames`` touch (first touched first): what its events change."""
    parts = [_normalised(name, frame) for name, frame in frames.items() if not frame.is_empty()]
    if not parts:
        return pl.DataFrame()
    batch = pl.concat(parts, how="diagonal_relaxed").sort(INDEX)
    batch = batch.with_columns(pl.lit(None, t).alias(f) for f, t in _FIELDS.items() if f not in batch.columns)
    at = pl.col("at")
    return batch.group_by("order_id", maintain_order=True).agg(
        pl.col("account_id").first(),
        pl.col("instrument").first(),
        pl.len().alias("events"),
        at.max().alias("updated_at"),
        *(pl.col(name).filter(_REQUEST).drop_nulls().first() for name in DESCRIPTIVE),
        _REQUEST.any().alias("requested"),
        pl.col("quantity").filter(_REQUEST).first().alias("first_quantity"),
        pl.col("quantity").filter(_REQUEST).last().alias("requested_quantity"),
        pl.col("limit_price").filter(_REQUEST).last().alias("requested_price"),
        _AMEND.any().alias("amended"),
        pl.col("quantity").filter(_AMEND).last().alias("amended_quantity"),
        pl.col("limit_price").filter(_AMEND).last().alias("amended_price"),
        at.filter(_AMEND).last().alias("amended_at"),
        at.filter(kind == "OrderPlaced").last().alias("placed_at"),
        pl.col("cumulative_quantity").filter(_FILL).max().alias("filled_quantity"),
        _LEAVES.drop_nulls().last().alias("leaves_quantity"),
        _REJECT.any().alias("rejected"),
        pl.col("reason_code").filter(_REJECT).last(),
        _REASONED.any().alias("reasoned"),
        pl.col("reason").filter(_REASONED).last(),
        _TRIGGER.filter(~_TRIGGER.is_in(_STILL)).alias("triggers"),
    )


def merged(row: Row | None, change: Mapping[str, Any]) -> Row:
    """``row`` (None for an order not seen before) after the events ``change`` reduces."""
    if row is None:
        row = {
            "order_id": change["order_id"],
            "account_id": change["account_id"],
            "instrument": change["instrument"],
            "filled_quantity": Decimal(0),
            "updated_at": change["updated_at"],
            "events": 0,
        }
    else:
        row = dict(row)
    row["events"] += change["events"]
    row["updated_at"] = max(row["updated_at"], change["updated_at"])
    row["status"] = _settled(_STATUSES[row.get("status", INITIAL)], change["triggers"], change["order_id"])
    for name in DESCRIPTIVE:
        if row.get(name) is None:
            row[name] = change[name]
    if change["amended"]:
        row["quantity"], row["limit_price"] = change["amended_quantity"], change["amended_price"]
        row["amended_at"] = change["amended_at"]
    elif change["requested"] and row.get("amended_at") is None:
        row["quantity"], row["limit_price"] = change["requested_quantity"], change["requested_price"]
    if change["leaves_quantity"] is not None:
        row["leaves_quantity"] = change["leaves_quantity"]
    elif change["requested"] and row.get("leaves_quantity") is None:
        row["leaves_quantity"] = change["first_quantity"]
    if change["placed_at"] is not None:
        row["placed_at"] = change["placed_at"]
    if change["filled_quantity"] is not None:
        row["filled_quantity"] = max(row["filled_quantity"], change["filled_quantity"])
    if change["rejected"]:
        row["reason_code"] = change["reason_code"]
    if change["reasoned"]:
        row["reason"] = change["reason"]
    return row


def fold(rows: Mapping[tuple[Any, ...], Row], found: pl.DataFrame) -> list[Row]:
    """The rows of the orders ``found`` (``changes``) after it, from ``rows`` (the current ones, by order id)."""
    return [merged(rows.get((change["order_id"],)), change) for change in found.iter_rows(named=True)]


def _settled(status: OrderStatus, triggers: Iterable[str], order_id: str) -> OrderStatus:
    for name in triggers:
        try:
            status = settle(status, _TRIGGERS[name])
        except InvalidTransition as err:  # impossible from our processors; the other events still count
            log.warning("order %s: %s", order_id, err)
    return status


def _normalised(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """An event type's rows as the columns the reduction reads (the ones its events lack are left out)."""
    return frame.select(
        pl.col(INDEX),
        pl.col("order_id"),
        pl.col("account_id"),
        pl.col("instrument"),
        pl.lit(name).alias("type"),
        envelope("occurred_at").alias("at"),
        *(
            pl.col(field).cast(pl.String) if isinstance(frame.schema[field], pl.Enum) else pl.col(field)
            for field in _FIELDS
            if field in frame.columns
        ),
    )
