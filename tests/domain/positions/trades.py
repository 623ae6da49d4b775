"""Fills for one account made from real recorded trades (``data/market``), for the property tests.

Prices and sizes go through ``str`` to ``Decimal`` and onto the instrument's tick and lot (the Binance file stores
floats, so ``0.000311`` reads as ``0.00031099999999999997``; the snap is checked to be float noise only). Sides
and sizes are either the trades' own (the aggressor's side) or drawn from a seeded generator — tests only; the
book itself never sees randomness.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl

from domain.instruments import Instrument, InstrumentRegistry
from schemas.events import Liquidity, OrderFilled, Side
from streams.ingest import recorded
from tests.support import events as examples

BINANCE_TRADES = recorded.market_file(recorded.BINANCE_TRADES)
BITMEX_TRADES = recorded.market_file("bitmex-xbtusd-trades-2020-03-01.csv")

ACCOUNT = examples.ACCOUNT
TAKER_FEE = Decimal("0.0004")
MAKER_FEE = Decimal("-0.0001")  # a rebate
_NAMESPACE = uuid.UUID("0b5e3c4a-6f1d-4e2b-9a7c-5d8e1f2a3b4c")


@dataclass(frozen=True)
class Trade:
    """One recorded trade: when, at what price, how much, and which side the aggressor was on."""

    trade_id: str
    at: datetime
    price: Decimal
    size: Decimal
    side: Side


def binance_btcusdt() -> list[Trade]:
    frame = pl.read_parquet(BINANCE_TRADES).sort("trade_id")
    btcusdt = _instrument("BTCUSDT")
    return [
        Trade(
            trade_id=str(row["trade_id"]),
            at=row["timestamp"].astimezone(UTC),
            price=_snap(str(row["price"]), btcusdt.tick_size),
            size=_snap(str(row["quantity"]), btcusdt.lot_size),
            # The buyer was the maker, so the aggressor sold.
            side=Side.SELL if row["buyer_maker"] == "True" else Side.BUY,
        )
        for row in frame.iter_rows(named=True)
    ]


def bitmex_xbtusd() -> list[Trade]:
    frame = pl.read_csv(BITMEX_TRADES, infer_schema_length=0)  # every column as text: nothing goes through float
    xbtusd = _instrument("XBTUSD")
    return [
        Trade(
            trade_id=row["id"],
            at=datetime.fromtimestamp(int(row["timestamp"]) // 1_000_000, UTC).replace(
                microsecond=int(row["timestamp"]) % 1_000_000
            ),
            price=_snap(row["price"], xbtusd.tick_size),
            size=_snap(row["amount"], xbtusd.lot_size),
            side=Side.BUY if row["side"] == "buy" else Side.SELL,
        )
        for row in frame.iter_rows(named=True)
    ]


def fills(instrument: str, trades: list[Trade], *, seed: int | None = None, rounds: int = 1) -> list[OrderFilled]:
    """The account's fills at the trades' prices and times, ``rounds`` passes over ``trades``.

    Without a seed: the trades' own sides and sizes, all taker. With one: random sides; sizes of 1 to 40 times the
    trade's, or exactly what closes the position (about one fill in eight), so the position often goes flat and
    crosses zero; about a third are maker fills earning a rebate.
    """
    quote = _instrument(instrument).quote
    rng = random.Random(seed)
    held = Decimal(0)
    out: list[OrderFilled] = []
    for number, (round_, trade) in enumerate(_passes(trades, rounds), start=1):
        side, size, liquidity = trade.side, trade.size, Liquidity.TAKER
        if seed is not None:
            if held and rng.random() < 0.125:
                side, size = (Side.SELL if held > 0 else Side.BUY), abs(held)
            else:
                side, size = rng.choice((Side.BUY, Side.SELL)), trade.size * rng.randint(1, 40)
            liquidity = Liquidity.MAKER if rng.random() < 0.33 else Liquidity.TAKER
        held += size if side is Side.BUY else -size
        rate = MAKER_FEE if liquidity is Liquidity.MAKER else TAKER_FEE
        fill_id = f"{instrument}-{trade.trade_id}-{round_}"
        out.append(
            examples.order_filled(
                envelope=examples.envelope(
                    OrderFilled,
                    event_id=uuid.uuid5(_NAMESPACE, fill_id),
                    occurred_at=trade.at,
                    recorded_at=trade.at,
                    correlation_id=f"corr-{fill_id}",
                    aggregate_id=instrument,
                    sequence=number,
                ),
                order_id=f"ord-{number}",
                account_id=ACCOUNT,
                instrument=instrument,
                side=side,
                fill_id=fill_id,
                fill_price=trade.price,
                fill_quantity=size,
                cumulative_quantity=size,
                leaves_quantity=Decimal("0E-8"),
                liquidity=liquidity,
                fee=(trade.price * size * rate).quantize(Decimal("1E-8"), rounding=ROUND_HALF_EVEN),
                fee_currency=quote,
                is_final=True,
            )
        )
    return out


def _passes(trades: list[Trade], rounds: int) -> Iterator[tuple[int, Trade]]:
    for round_ in range(rounds):
        for trade in trades:
            yield round_, trade


def _instrument(symbol: str) -> Instrument:
    return InstrumentRegistry.from_file()[symbol]


def _snap(text: str, step: Decimal) -> Decimal:
    """``text`` on the grid of ``step``, at the schemas' 8 places; refuses a difference larger than float noise."""
    raw = Decimal(text)
    snapped = (raw / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step
    assert abs(raw - snapped) < step / 1000, f"{text} is not on the grid of {step}"
    return snapped.quantize(Decimal("1E-8"))
