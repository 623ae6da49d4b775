"""What the API answers (the request bodies are the commands themselves, ``commands.models``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema, create_model
from sqlalchemy import Boolean, Column, DateTime, Float, Integer, Numeric, Table
from sqlalchemy.dialects.postgresql import JSONB

from domain.lifecycle import OrderStatus
from projections import tables


class WaitFor(StrEnum):
    """What ``?wait=`` waits for: risk's decision on the PENDING order (ACCEPTED, or REJECTED with the reason)."""

    ACCEPTED = OrderStatus.ACCEPTED.value


class EventRef(BaseModel):
    """Where the command's event now is in the log."""

    topic: str
    partition: int
    offset: int


class OrderAck(BaseModel):
    """Where the order's event is; with ``?wait=ACCEPTED``, also what risk decided (if it did in time)."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "order_id": "0b7e0a8e-8c9e-5f55-9a51-6d1f1e9b1f3a",
                    "status": "PENDING",
                    "event": {"topic": "orders", "partition": 3, "offset": 1042},
                }
            ]
        }
    }

    order_id: str
    status: OrderStatus | Literal["CANCEL_REQUESTED", "AMEND_REQUESTED"] = Field(
        description="The order's status when placed (PENDING, or risk's decision with ?wait=ACCEPTED); a cancel or "
        "amend is acknowledged as requested: the venue's answer moves the order's status."
    )
    event: EventRef
    reason_code: str | None = Field(None, description="Why risk rejected the order (with ?wait=ACCEPTED).")
    reason: str | None = Field(None, description="The rejection, naming the limit and the values compared.")


class AccountAck(BaseModel):
    account_id: str
    status: Literal["risk_limits_set", "kill_switch_engaged", "kill_switch_released"]
    event: EventRef


class PartitionRange(BaseModel):
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    count: int


class TicksAck(BaseModel):
    accepted: int = Field(description="Ticks appended.")
    ranges: list[PartitionRange] = Field(description="Where they are, per partition.")


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class InstrumentOut(BaseModel):
    symbol: str
    venue: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: str
    max_quantity: str
    tradable: bool


class FieldError(BaseModel):
    field: str = Field(description="The field at fault, as a path (`ticks[3].bid`); `body` for the body as a whole.")
    rule: str = Field(description="The rule it breaks.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong and, for bad input, each field and the rule it breaks."""

    type: str
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path of the request.")
    errors: list[FieldError] | None = Field(None, description="Present when the input is at fault.")


# The read routes answer the read models' rows whole, so each row's model is derived from its table: a column added
# to a read model is in the document the moment it is in the answers. Decimals and times are text, exactly as the
# rows are rendered (an exact decimal, ISO 8601), never re-rendered by the model.
DecimalText = Annotated[str, WithJsonSchema({"type": "string", "format": "decimal", "examples": ["39420.50000000"]})]
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def _python_type(column: Column[Any]) -> Any:
    kind = column.type
    found: Any
    if isinstance(kind, Float):  # before Numeric: a Float is a Numeric
        found = float
    elif isinstance(kind, Numeric):
        found = DecimalText
    elif isinstance(kind, DateTime):
        found = Timestamp
    elif isinstance(kind, Integer):  # BigInteger too
        found = int
    elif isinstance(kind, Boolean):
        found = bool
    elif isinstance(kind, JSONB):
        found = dict[str, Any]
    else:
        found = str
    return found | None if column.nullable else found


def row_model(name: str, table: Table, doc: str, **narrower: Any) -> type[BaseModel]:
    """A model of one row of ``table``: every column, a nullable one as present-but-null; ``narrower`` names a type
    for a column whose values are fewer than its SQL type allows (an order's status)."""
    fields: dict[str, Any] = {column.name: (_python_type(column), ...) for column in table.columns}
    fields.update({column: (kind, ...) for column, kind in narrower.items()})
    return create_model(name, __doc__=doc, **fields)


class CheckpointOffset(BaseModel):
    topic: str
    partition: int
    offset: int = Field(description="The next offset the projection reads: everything before it is in the answer.")


class Checkpoint(BaseModel):
    """How far the read model answering has read the log."""

    projection: str
    offsets: list[CheckpointOffset]
    updated_at: Timestamp | None


def page_model(item: type[BaseModel]) -> type[BaseModel]:
    """A page of ``item``s: `next` is the cursor of the following page (null on the last)."""
    return create_model(
        f"{item.__name__}Page",
        __doc__=f"A page of {item.__name__} rows, with the read model's checkpoint.",
        items=(list[item], ...),  # type: ignore[valid-type]
        next=(str | None, Field(..., description="Pass as ?cursor= for the next page; null on the last.")),
        checkpoint=(Checkpoint, ...),
    )


Order = row_model("Order", tables.orders, "An order in its current state.", status=OrderStatus)
OrderWithCheckpoint = create_model(
    "OrderWithCheckpoint",
    __base__=Order,
    __doc__="An order, with the orders read model's checkpoint.",
    checkpoint=(Checkpoint, ...),
)
OrderEvent = row_model("OrderEvent", tables.order_events, "One event of an order, with where it is in the log.")
Fill = row_model("Fill", tables.fills, "A fill, as the venue reported it.")
PositionRow = row_model("Position", tables.positions, "An account's position in an instrument (average cost).")
PnlRow = row_model("Pnl", tables.pnl, "Realized and unrealized PnL of an account in an instrument.")
Candle = row_model("Candle", tables.candles, "One OHLCV bucket of an instrument and timeframe.")
Signal = row_model("Signal", tables.signals_latest, "The latest signal of an instrument and indicator.")
Rejection = row_model("Rejection", tables.risk_rejections, "An order or amend risk rejected, and why.")
RiskLimitsRow = row_model("RiskLimits", tables.risk_limits, "An account's risk limits and kill switch.")
