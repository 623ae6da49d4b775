"""Recorded Binance BTC/USDT quotes and trades (2021-01-08): polars frames for the references, ticks for the venue.

The files store floats; each goes through ``str`` to ``Decimal`` and onto the instrument's grid — prices on the
tick, sizes on the lot — and the snap is checked to move nothing but float noise (``0.031035000000000004``).
Frames hold the snapped values as ``Decimal(18, 8)``, so references computed with polars compare exactly.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from domain.instruments import InstrumentRegistry
from domain.venue.venue import SimulatedVenue, VenueConfig
from schemas.events import (
    AmendAccepted,
    CancelAccepted,
    Event,
    OrderAccepted,
    OrderType,
    Side,
    TickIngested,
    TimeInForce,
)
from streams.ingest.recorded import BINANCE_QUOTES, BINANCE_TRADES, market_file
from tests.support import events as examples

BTCUSDT = InstrumentRegistry.from_file()["BTCUSDT"]
ACCOUNT = examples.ACCOUNT
DECIMAL = pl.Decimal(18, 8)
CONFIG = VenueConfig(slippage_bps=Decimal("2.5"), maker_fee_bps=Decimal("-1"), taker_fee_bps=Decimal("7.5"))
_IDS = uuid.UUID("3c0f6a52-1e8b-4d7a-b2c9-7f4e5d6a8b90")


def on_grid(value: float, step: Decimal) -> Decimal:
    """``value`` read exactly via ``str`` and snapped to ``step`` (a power of ten), checked to be float noise only."""
    read = Decimal(str(value))
    snapped = read.quantize(step)
    assert abs(read - snapped) < Decimal("1E-9"), f"{value} is not on the grid {step}"
    return snapped


def _decimals(values: Iterable[float], step: Decimal) -> pl.Series:
    return pl.Series([on_grid(v, step) for v in values], dtype=DECIMAL)


@functools.cache
def quotes() -> pl.DataFrame:
    """One row per recorded quote, in file order: row, ts, bid, bid_size, ask, ask_size."""
    raw = pl.read_parquet(market_file(BINANCE_QUOTES))
    return pl.DataFrame(
        {
            "row": pl.int_range(raw.height, eager=True),
            "ts": raw["timestamp"].dt.cast_time_unit("us"),
            "bid": _decimals(raw["bid"], BTCUSDT.tick_size),
            "bid_size": _decimals(raw["bid_size"], BTCUSDT.lot_size),
            "ask": _decimals(raw["ask"], BTCUSDT.tick_size),
            "ask_size": _decimals(raw["ask_size"], BTCUSDT.lot_size),
        }
    )


@functools.cache
def trades() -> pl.DataFrame:
    """One row per recorded trade, in file order: row, ts, price, size."""
    raw = pl.read_parquet(market_file(BINANCE_TRADES))
    return pl.DataFrame(
        {
            "row": pl.int_range(raw.height, eager=True),
            "ts": raw["timestamp"].dt.cast_time_unit("us"),
            "price": _decimals(raw["price"], BTCUSDT.tick_size),
            "size": _decimals(raw["quantity"], BTCUSDT.lot_size),
        }
    )


def _tick(kind: str, row: int, ts: datetime, **prices: Any) -> TickIngested:
    ts = ts.astimezone(UTC)  # polars hands out ZoneInfo("UTC"); events carry datetime.UTC
    envelope = examples.envelope(
        TickIngested,
        event_id=uuid.uuid5(_IDS, f"{kind}/{row}"),
        occurred_at=ts,
        recorded_at=ts,
        correlation_id=f"{kind}-{row}",
        aggregate_id=BTCUSDT.symbol,
        sequence=row + 1,
    )
    fields = {"bid": None, "ask": None, "last": None, "bid_size": None, "ask_size": None, "last_size": None}
    return examples.tick_ingested(
        envelope=envelope, exchange_ts=ts, source=f"file:binance-btcusdt-{kind}s", **fields | prices
    )


@functools.cache
def quote_ticks() -> tuple[TickIngested, ...]:
    """A quote tick (bid, ask and their sizes; no last) per row of ``quotes()``, in the same order."""
    return tuple(
        _tick("quote", r["row"], r["ts"], bid=r["bid"], bid_size=r["bid_size"], ask=r["ask"], ask_size=r["ask_size"])
        for r in quotes().iter_rows(named=True)
    )


@functools.cache
def trade_ticks() -> tuple[TickIngested, ...]:
    """A trade print (last and last_size only) per row of ``trades()``, in the same order."""
    return tuple(
        _tick("trade", r["row"], r["ts"], last=r["price"], last_size=r["size"]) for r in trades().iter_rows(named=True)
    )


@functools.cache
def mixed_ticks() -> tuple[TickIngested, ...]:
    """Quotes and trade prints merged in time order, a quote first on a tie (a stable merge: file order kept)."""
    keyed = [(t.envelope.occurred_at, 0, i, t) for i, t in enumerate(quote_ticks())]
    keyed += [(t.envelope.occurred_at, 1, i, t) for i, t in enumerate(trade_ticks())]
    return tuple(t for *_, t in sorted(keyed, key=lambda k: k[:3]))


# --- orders, cancels, amends, as risk forwards them -------------------------------------------------------------


def _envelope(cls: type[Event], name: str, at: datetime, sequence: int = 1) -> Any:
    return examples.envelope(
        cls,
        event_id=uuid.uuid5(_IDS, name),
        occurred_at=at,
        recorded_at=at,
        correlation_id=name,
        aggregate_id=ACCOUNT,
        sequence=sequence,
    )


def accepted(
    order_id: str,
    side: Side,
    quantity: str,
    *,
    at: datetime,
    limit: Decimal | str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    account: str = ACCOUNT,
) -> OrderAccepted:
    """A MARKET order when ``limit`` is None, else a LIMIT."""
    return examples.order_accepted(
        envelope=_envelope(OrderAccepted, f"accept/{order_id}", at),
        order_id=order_id,
        account_id=account,
        client_order_id=f"cli-{order_id}",
        side=side,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        time_in_force=tif,
        quantity=Decimal(quantity),
        limit_price=None if limit is None else Decimal(limit),
    )


def cancel(
    order_id: str, *, at: datetime, account: str = ACCOUNT, reason: str | None = None, sequence: int = 2
) -> CancelAccepted:
    """A cancel risk forwarded; ``sequence``: its place in the order's stream on orders.checked (after the accept)."""
    return examples.cancel_accepted(
        envelope=_envelope(CancelAccepted, f"cancel/{order_id}/{at.isoformat()}", at, sequence),
        order_id=order_id,
        account_id=account,
        reason=reason,
    )


def amend(
    order_id: str,
    *,
    at: datetime,
    quantity: str | None = None,
    limit: Decimal | str | None = None,
    account: str = ACCOUNT,
    sequence: int = 2,
) -> AmendAccepted:
    return examples.amend_accepted(
        envelope=_envelope(AmendAccepted, f"amend/{order_id}/{at.isoformat()}/{quantity}/{limit}", at, sequence),
        order_id=order_id,
        account_id=account,
        new_quantity=None if quantity is None else Decimal(quantity),
        new_limit_price=None if limit is None else Decimal(limit),
    )


# --- running a venue --------------------------------------------------------------------------------------------


def venue(config: VenueConfig = CONFIG) -> SimulatedVenue:
    return SimulatedVenue(BTCUSDT, config)


def run(venue: SimulatedVenue, events: Iterable[Event]) -> list[Event]:
    """Everything ``venue`` derives from ``events``, in order."""
    return [derived for event in events for derived in venue.handle(event)]


def of_type(events: Iterable[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def quote(row: int) -> dict[str, Any]:
    """Row ``row`` of ``quotes()`` as a dict, its ``ts`` in ``datetime.UTC``."""
    found = quotes().row(row, named=True)
    return found | {"ts": found["ts"].astimezone(UTC)}


def maker_fills(frame: pl.DataFrame, size: str, quantity: Decimal) -> pl.DataFrame:
    """The reference for one resting order alone: each row of ``frame`` (the quotes or prints that reach it, in
    order) fills what its ``size`` column offers, until ``quantity`` is filled; adds ``fill`` and ``cumulative``."""
    return (
        frame.with_columns(before=pl.col(size).cum_sum() - pl.col(size))
        .with_columns(fill=pl.min_horizontal(pl.col(size), pl.lit(quantity, dtype=DECIMAL) - pl.col("before")))
        .filter(pl.col("fill") > 0)
        .with_columns(cumulative=pl.col("before") + pl.col("fill"))
    )
