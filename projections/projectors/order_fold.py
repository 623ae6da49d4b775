"""The ``orders`` read model folded a batch at a time: a batch's events of each order reduced to one change, as
columns, then joined with the orders' current rows and merged as columns — no Python per event or per order.

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
from decimal import Decimal

import polars as pl

from domain.lifecycle import INITIAL, UNCHANGING, InvalidTransition, OrderStatus, Trigger, settle
from projections import tables
from projections.projectors.base import Frames, frame_schema
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
        at.filter(kind == "OrderPlaced").first().alias("placed_at"),  # a placement appended again keeps the first time
        pl.col("cumulative_quantity").filter(_FILL).max().alias("filled_quantity"),
        _LEAVES.drop_nulls().last().alias("leaves_quantity"),
        _REJECT.any().alias("rejected"),
        pl.col("reason_code").filter(_REJECT).last(),
        _REASONED.any().alias("reasoned"),
        pl.col("reason").filter(_REASONED).last(),
        _TRIGGER.filter(~_TRIGGER.is_in(_STILL)).alias("triggers"),
    )


def fold(current: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    """The rows of the orders ``found`` (``changes``) after it, from ``current`` (their rows so far, in
    ``tables.orders``' columns; an order not there is new), in ``found``'s order and ``tables.orders``' columns:
    each order's row merged with what the batch's events change, as columns."""
    schema = frame_schema(tables.orders)
    row = current.select(pl.col(name).alias(f"{_WAS}{name}") for name in schema)
    joined = found.join(row, left_on="order_id", right_on=f"{_WAS}order_id", how="left", maintain_order="left")
    was = _was
    zero = pl.lit(Decimal(0)).cast(_AMOUNT)
    amended, requested = pl.col("amended"), pl.col("requested")
    # What a request leaves: its quantity, unless the venue has said what is left (a fill, an amend, the end).
    leaves = pl.when(requested & was("leaves_quantity").is_null()).then("first_quantity")
    keeps_request = requested & was("amended_at").is_null()  # a request after an amend changes nothing of it
    merged = joined.with_columns(
        (was("events").fill_null(0) + pl.col("events")).alias("events"),
        pl.max_horizontal(was("updated_at"), "updated_at").alias("updated_at"),
        _statuses(joined),
        *(pl.coalesce(was(name), name).alias(name) for name in DESCRIPTIVE),
        pl.when(amended)
        .then("amended_quantity")
        .when(keeps_request)
        .then("requested_quantity")
        .otherwise(was("quantity"))
        .alias("quantity"),
        pl.when(amended)
        .then("amended_price")
        .when(keeps_request)
        .then("requested_price")
        .otherwise(was("limit_price"))
        .alias("limit_price"),
        pl.when(amended).then("amended_at").otherwise(was("amended_at")).alias("amended_at"),
        pl.coalesce("leaves_quantity", leaves.otherwise(was("leaves_quantity"))).alias("leaves_quantity"),
        pl.coalesce(was("placed_at"), "placed_at").alias("placed_at"),
        pl.max_horizontal(was("filled_quantity").fill_null(zero), "filled_quantity").alias("filled_quantity"),
        pl.when("rejected").then("reason_code").otherwise(was("reason_code")).alias("reason_code"),
        pl.when("reasoned").then("reason").otherwise(was("reason")).alias("reason"),
    )
    return merged.select(*schema)


_WAS = "was_"  # the current row's columns, beside the change's


def _was(name: str) -> pl.Expr:
    return pl.col(f"{_WAS}{name}")


def _statuses(joined: pl.DataFrame) -> pl.Expr:
    """Each order's status: its triggers settled from its current status (the initial one for a new order), worked
    out once per distinct (status, run of triggers)."""
    runs = pl.concat_list(_was("status").fill_null(INITIAL.value), "triggers").list.join(_SEP)
    keys = joined.select(runs.unique()).to_series().to_list()
    statuses = {key: _settled(key, joined, runs) for key in keys}
    return runs.replace_strict(statuses, return_dtype=pl.String).alias("status")


_SEP = "\x1f"


def _settled(key: str, joined: pl.DataFrame, runs: pl.Expr) -> str:
    """The status a run (a status, then triggers, ``_SEP``-joined) settles in; an impossible transition is logged
    with every order of that run, and the other triggers still count."""
    first, *triggers = key.split(_SEP)
    status = _STATUSES[first]
    for name in triggers:
        try:
            status = settle(status, _TRIGGERS[name])
        except InvalidTransition as err:  # impossible from our processors; the other events still count
            orders = joined.filter(runs == key).get_column("order_id").to_list()
            log.warning("orders %s: %s", ", ".join(orders), err)
    return status.value


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
