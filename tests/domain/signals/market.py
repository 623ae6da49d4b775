"""Real recorded market data as ``TickIngested`` events, and as the polars frame the references are computed from.

Every feed is a ``Feed``: the ticks, in the order the engine gets them, and a frame with one row per tick
(``ts`` UTC µs, ``bid``, ``ask``, ``last``, ``last_size`` as floats, null where the tick has none). Prices and
sizes are rounded to 8 decimals, as ``decimal(18, 8)`` on the wire holds them, in both.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from schemas.events import TickIngested, new_envelope
from streams.ingest.recorded import BINANCE_QUOTES, BINANCE_TRADES, market_file
from tests.support.properties import example_count

# The tests replaying a whole feed through the engine: one xdist worker runs them all (`make unit` passes
# --dist loadgroup), so the FTX feed (180,000 ticks, 3 s of CPU to build; a fifth of it in `make unit`) and the
# signals it gives are computed once, not once per worker.
WHOLE_FEEDS = pytest.mark.xdist_group("whole-market-feeds")
# histdata.com stamps EURUSD in EST without daylight saving all year: a fixed UTC-05:00, never EDT.
HISTDATA_OFFSET = timedelta(hours=-5)
COLUMNS = ("ts", "bid", "ask", "last", "last_size")


@dataclass(frozen=True)
class Feed:
    instrument: str
    ticks: list[TickIngested]
    frame: pl.DataFrame


@functools.cache
def binance_btcusdt() -> Feed:
    """Binance BTC/USDT top-of-book quotes and trade prints, merged in time order (a quote first on a tie)."""
    quotes = pl.read_parquet(market_file(BINANCE_QUOTES)).select(
        ts=pl.col("timestamp"), bid=pl.col("bid"), ask=pl.col("ask")
    )
    trades = pl.read_parquet(market_file(BINANCE_TRADES)).select(
        ts=pl.col("timestamp"), last=pl.col("price"), last_size=pl.col("quantity")
    )
    merged = pl.concat([quotes, trades], how="diagonal").sort("ts", maintain_order=True)
    return _feed("BTCUSDT", "binance", merged)


@functools.cache
def histdata_eurusd() -> Feed:
    """histdata EURUSD quotes (``YYYYMMDD HHMMSSmmm,bid,ask,vol``, EST = UTC-5 fixed); no trades, so no volume."""
    raw = pl.read_csv(
        market_file("histdata-eurusd-quotes-2020-01.csv"),
        has_header=False,
        new_columns=["stamp", "bid", "ask", "volume"],
        schema_overrides={"stamp": pl.String},
    )
    local = raw["stamp"].str.to_datetime("%Y%m%d %H%M%S%3f", time_unit="us")
    frame = raw.select(ts=(local - HISTDATA_OFFSET).dt.replace_time_zone("UTC"), bid=pl.col("bid"), ask=pl.col("ask"))
    return _feed("EURUSD", "histdata", frame.sort("ts", maintain_order=True))


@functools.cache
def ftx_bars() -> pl.DataFrame:
    """FTX BTC-PERP one-minute bars (UTC, labelled by their start): ts, open, high, low, close, volume."""
    raw = pl.read_csv(market_file("ftx-btcperp-bars-1m-2022-01.csv"))
    return raw.with_columns(ts=pl.col("timestamp").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")).drop(
        "timestamp"
    )


@functools.cache
def ftx_btcperp() -> Feed:
    """The FTX bars replayed as trade prints: open, high, low and close 0, 15, 30 and 45 s into each minute.

    FTX reports volume in USD; the close print carries it as a quantity of ``volume / close`` BTC, so the session
    VWAP is the volume-weighted mean of closes.

    The default profile (`make test`) replays the whole month; `make unit`'s replays its first fifth (six days), as
    it runs a fifth of each property's examples.
    """
    bars = ftx_bars().head(example_count(ftx_bars().height))
    steps = {"open": 0, "high": 15, "low": 30, "close": 45}
    prints = [
        bars.select(
            ts=pl.col("ts") + pl.duration(seconds=offset),
            last=pl.col(column),
            last_size=(pl.col("volume") / pl.col("close")) if column == "close" else pl.lit(None, pl.Float64),
        )
        for column, offset in steps.items()
    ]
    return _feed("BTC-PERP", "ftx", pl.concat(prints).sort("ts", maintain_order=True))


def _feed(instrument: str, venue: str, frame: pl.DataFrame) -> Feed:
    frame = frame.with_columns(*(pl.lit(None, pl.Float64).alias(c) for c in COLUMNS if c not in frame.columns))
    frame = frame.select(
        pl.col("ts").dt.cast_time_unit("us").dt.convert_time_zone("UTC"),
        *(pl.col(c).cast(pl.Float64).round(8) for c in COLUMNS[1:]),
    )
    source = f"file:{venue}-{instrument.lower()}"
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, source)
    rows = frame.with_columns(pl.col("ts").dt.replace_time_zone(None)).iter_rows()  # naive UTC: cheaper to read
    ticks = [
        _tick(instrument, venue, source, uuid.UUID(int=namespace.int ^ i), i + 1, row) for i, row in enumerate(rows)
    ]
    return Feed(instrument, ticks, frame)


def _tick(
    instrument: str,
    venue: str,
    source: str,
    event_id: uuid.UUID,
    sequence: int,
    row: tuple[datetime, float | None, float | None, float | None, float | None],
) -> TickIngested:
    naive, bid, ask, last, last_size = row
    ts = naive.replace(tzinfo=UTC)
    return TickIngested(
        envelope=new_envelope(
            TickIngested,
            event_id=event_id,
            occurred_at=ts,
            recorded_at=ts,
            correlation_id=f"{source}#{sequence}",
            aggregate_id=instrument,
            sequence=sequence,
        ),
        instrument=instrument,
        venue=venue,
        bid=_decimal(bid),
        ask=_decimal(ask),
        last=_decimal(last),
        last_size=_decimal(last_size),
        exchange_ts=ts,
        source=source,
    )


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(f"{value:.8f}")


@dataclass(frozen=True)
class Case:
    """A feed and the bar interval it is cut into."""

    name: str
    load: Callable[[], Feed]
    bar_interval: timedelta

    @property
    def feed(self) -> Feed:
        return self.load()

    @property
    def interval_us(self) -> int:
        return self.bar_interval // timedelta(microseconds=1)

    def __str__(self) -> str:
        return self.name


CASES = [
    # 46 s of Binance: 100 ms bars give ~400 of them, enough for every indicator to warm up and cross.
    Case("binance-btcusdt-100ms", binance_btcusdt, timedelta(milliseconds=100)),
    Case("binance-btcusdt-1s", binance_btcusdt, timedelta(seconds=1)),
    Case("histdata-eurusd-1s", histdata_eurusd, timedelta(seconds=1)),
    Case("ftx-btcperp-1m", ftx_btcperp, timedelta(minutes=1)),
]
