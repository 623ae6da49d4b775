"""What the API answers (the request bodies are the commands themselves, ``commands.models``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from domain.lifecycle import OrderStatus


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
