"""A trading session built from the real BTCUSDT quotes: ticks interleaved with orders and cancels in event time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from commands import decide
from commands.models import CancelOrder, PlaceOrder
from commands.refs import OrderRef
from domain import derive
from schemas.events import Event, OrderType, TickIngested, new_envelope
from streams.ingest.recorded import BINANCE_QUOTES, market_file

QUOTES = market_file(BINANCE_QUOTES)
CENT = Decimal("0.01")


def quote_tick(quote: dict[str, Any], at: datetime, sequence: int) -> TickIngested:
    """A recorded BTCUSDT quote as the ``sequence``-th tick of the instrument, dated ``at``."""
    tick_id = derive.event_id_for(TickIngested, "BTCUSDT", sequence)
    return TickIngested(
        envelope=new_envelope(
            TickIngested,
            event_id=tick_id,
            occurred_at=at,
            recorded_at=at,
            correlation_id=str(tick_id),
            aggregate_id="BTCUSDT",
            sequence=sequence,
        ),
        instrument="BTCUSDT",
        venue="BINANCE",
        bid=Decimal(str(quote["bid"])).quantize(CENT),
        ask=Decimal(str(quote["ask"])).quantize(CENT),
        bid_size=Decimal(str(quote["bid_size"])).quantize(Decimal("0.000001")),
        ask_size=Decimal(str(quote["ask_size"])).quantize(Decimal("0.000001")),
        exchange_ts=at,
        source="recorded",
    )


def session(orders: int, seed: int = 11, accounts: int = 40) -> list[Event]:
    """``orders`` orders over the real quotes (cycled, a day apart per pass), with some cancels, in event-time order."""
    rng = random.Random(seed)
    quotes = pl.read_parquet(QUOTES).sort("timestamp").to_dicts()
    per_quote = max(1, orders // len(quotes) + 1)
    log: list[Event] = []
    resting: list[OrderRef] = []
    placed = 0
    lap = 0
    while placed < orders:
        for sequence, q in enumerate(quotes, start=1 + lap * len(quotes)):
            at = q["timestamp"] + timedelta(days=lap)
            bid, ask = Decimal(str(q["bid"])).quantize(CENT), Decimal(str(q["ask"])).quantize(CENT)
            log.append(quote_tick(q, at, sequence))
            for k in range(per_quote):
                if placed >= orders:
                    break
                when = at + timedelta(microseconds=k + 1)
                if resting and rng.random() < 0.08:
                    order = resting.pop(rng.randrange(len(resting)))
                    log.append(
                        decide.request_cancel(CancelOrder(), order, 2, decide.Stamp(when, f"c-{order.order_id}"))
                    )
                    continue
                kind = rng.choice(["MARKET", "GTC", "GTC", "IOC", "FOK"])
                side = rng.choice(["BUY", "SELL"])
                ticks_away = rng.randint(-3, 3)
                touch = ask if side == "BUY" else bid
                body = {
                    "account_id": f"ACC-{rng.randrange(accounts)}",
                    "client_order_id": f"s{seed}-{placed}",
                    "instrument": "BTCUSDT",
                    "side": side,
                    "order_type": "MARKET" if kind == "MARKET" else "LIMIT",
                    "time_in_force": "IOC" if kind == "MARKET" else kind,
                    "quantity": str(Decimal(rng.randint(1, 50)) / 1000),
                    "limit_price": None if kind == "MARKET" else str(touch + ticks_away * CENT),
                }
                event = decide.place_order(PlaceOrder.model_validate(body), decide.Stamp(when, f"corr-{placed}"))
                log.append(event)
                placed += 1
                if kind == "GTC":
                    resting.append(OrderRef(event.order_id, event.account_id, "BTCUSDT", OrderType.LIMIT))
        lap += 1
    return log
