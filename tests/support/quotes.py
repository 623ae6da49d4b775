"""Request bodies priced off the first real BTCUSDT quote: a fresh tick of it, and limit buys around it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from tests.support.market_log import CENT, QUOTES


def first_quote() -> tuple[Decimal, Decimal]:
    """(bid, ask) of the first recorded quote."""
    quote = pl.read_parquet(QUOTES).row(0, named=True)
    return Decimal(str(quote["bid"])), Decimal(str(quote["ask"]))


def fresh_tick(bid: Decimal, ask: Decimal) -> dict[str, Any]:
    """A `POST /v1/ticks` body quoting ``bid``/``ask`` now, so risk takes it as a current reference price."""
    tick = {"instrument": "BTCUSDT", "bid": str(bid), "ask": str(ask), "bid_size": "2", "ask_size": "2"}
    return {"source": "tests", "ticks": [{**tick, "exchange_ts": datetime.now(UTC).isoformat()}]}


def limit_buy(account: str, price: Decimal, quantity: str = "0.5") -> dict[str, Any]:
    """A GTC limit buy of BTCUSDT at ``price`` (rounded to the tick), with a fresh client order id."""
    return {
        "account_id": account,
        "client_order_id": f"q-{uuid.uuid4().hex[:10]}",
        "instrument": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "quantity": quantity,
        "limit_price": str(price.quantize(CENT)),
    }
