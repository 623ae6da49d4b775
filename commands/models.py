"""Commands: what a client asks tradecore to do. They are also the API's request bodies, so each field
documents itself in the OpenAPI schema; unknown fields (``status``, ``order_id``...) are refused, so a client
can never set what the server owns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from domain.risk.limits import LIMITS, Kind, Limit
from schemas.events import OrderType, Side, TimeInForce

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
Positive = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8, allow_inf_nan=False)]
NonNegative = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=8, allow_inf_nan=False)]
Money = Annotated[Decimal, Field(ge=0, max_digits=28, decimal_places=8, allow_inf_nan=False)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PlaceOrder(Command):
    """Place a market or limit order for an account."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "ACC-1",
                    "client_order_id": "desk7-000123",
                    "instrument": "BTCUSDT",
                    "side": "BUY",
                    "order_type": "LIMIT",
                    "time_in_force": "GTC",
                    "quantity": "0.25",
                    "limit_price": "39420.50",
                }
            ]
        }
    )

    account_id: Id = Field(description="The account the order trades for; must be one of the caller's.")
    client_order_id: Id = Field(
        description="The client's own id, unique per account; a repeat returns the first outcome."
    )
    instrument: Id = Field(description="Instrument symbol from the registry, e.g. BTCUSDT.")
    side: Side
    order_type: OrderType = Field(description="MARKET trades at the touch; LIMIT at limit_price or better.")
    time_in_force: TimeInForce = Field(
        TimeInForce.GTC,
        description="GTC rests until filled or cancelled; IOC fills what it can now; FOK all or nothing.",
    )
    quantity: Positive = Field(description="Order quantity in the instrument's lots (a decimal string).")
    limit_price: Positive | None = Field(None, description="Required for LIMIT orders, refused for MARKET orders.")


class CancelOrder(Command):
    """Cancel what is left of an order."""

    reason: str | None = Field(None, max_length=200, description="Free text kept in the audit trail.")


class AmendOrder(Command):
    """Change an order's quantity and/or limit price."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"new_quantity": "0.5", "new_limit_price": "39400.00"}]})

    new_quantity: Positive | None = Field(None, description="The new total quantity.")
    new_limit_price: Positive | None = Field(None, description="The new limit price (LIMIT orders only).")

    @model_validator(mode="after")
    def _a_change(self) -> AmendOrder:
        if self.new_quantity is None and self.new_limit_price is None:
            raise ValueError("give new_quantity, new_limit_price or both")
        return self


class Tick(Command):
    """One market-data observation: a quote, a trade, or both."""

    instrument: Id
    venue: Id | None = Field(None, description="Where it was observed; defaults to the instrument's venue.")
    bid: Positive | None = None
    ask: Positive | None = None
    last: Positive | None = None
    bid_size: NonNegative | None = None
    ask_size: NonNegative | None = None
    last_size: NonNegative | None = None
    exchange_ts: datetime = Field(description="Event time at the venue (ISO 8601 with offset); kept to the µs.")


class IngestTicks(Command):
    """A batch of ticks, appended in one go."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "desk-feed",
                    "ticks": [
                        {
                            "instrument": "BTCUSDT",
                            "bid": "39432.99",
                            "ask": "39433.62",
                            "bid_size": "0.0031",
                            "ask_size": "0.066851",
                            "exchange_ts": "2021-01-08T00:00:01.076000Z",
                        }
                    ],
                }
            ]
        }
    )

    source: Id = Field("api", description="Who produced the ticks (feed name).")
    ticks: list[Tick] = Field(min_length=1, max_length=10_000)


def _limit_field(limit: Limit) -> tuple[Any, Any]:
    """A limit as a field of the command body: its type and bounds from its one definition (``domain.risk.limits``)."""
    if limit.kind is Kind.QUANTITY:
        return Positive, Field(description=limit.doc)
    if limit.kind is Kind.MONEY:
        return Money, Field(description=limit.doc)
    return int, Field(gt=0, le=limit.most, description=limit.doc)


if TYPE_CHECKING:  # the fields are made at import from the limits' definition; mypy sees a plain command
    _Limits = Command
else:
    _Limits = create_model(
        "_Limits", __base__=Command, __module__=__name__, **{n: _limit_field(lim) for n, lim in LIMITS.items()}
    )


class SetRiskLimits(_Limits):
    """Replace an account's pre-trade risk limits."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "max_order_quantity": "10",
                    "max_order_notional": "500000",
                    "max_position_quantity": "25",
                    "max_open_notional": "2000000",
                    "daily_loss_limit": "50000",
                    "max_orders_per_second": 50,
                    "price_collar_bps": 500,
                    "reference_max_age_ms": 60000,
                }
            ]
        }
    )


class ToggleKillSwitch(Command):
    """Engage (block new orders, cancel open ones) or release an account's kill switch."""

    account_id: Id
    engaged: bool
    reason: str = Field(min_length=1, max_length=200)
