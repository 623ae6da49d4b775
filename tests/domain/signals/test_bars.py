"""Bars: event-time, epoch-aligned, mid or last price, volume from trade prints; closed by the next bar's tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from pydantic import ValidationError

from domain.signals import SignalConfig, SignalEngine
from domain.signals.bars import Bar, BarBuilder
from schemas.events import TickIngested
from tests.domain.signals import reference
from tests.domain.signals.market import CASES, WHOLE_FEEDS, Case, histdata_eurusd
from tests.support.events import tick_ingested

pytestmark = WHOLE_FEEDS

RTOL = 1e-9
T0 = datetime(2024, 3, 1, 12, 30, 15, tzinfo=UTC)  # a whole second
SECOND = 1_000_000


def at(offset_us: int) -> datetime:
    return T0 + timedelta(microseconds=offset_us)


def quote(offset_us: int, bid: str, ask: str) -> TickIngested:
    return tick_ingested(bid=Decimal(bid), ask=Decimal(ask), last=None, last_size=None, exchange_ts=at(offset_us))


def trade(offset_us: int, price: str, size: str | None = None) -> TickIngested:
    return tick_ingested(
        bid=None,
        ask=None,
        last=Decimal(price),
        last_size=None if size is None else Decimal(size),
        exchange_ts=at(offset_us),
    )


def closed_bars(builder: BarBuilder, ticks: list[TickIngested]) -> list[Bar]:
    return [bar for tick in ticks if (bar := builder.add(tick)) is not None]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bars_match_an_independent_polars_resampling_of_the_real_data(case: Case) -> None:
    builder = BarBuilder(case.interval_us)
    got = closed_bars(builder, case.feed.ticks)
    expected = reference.bars(case.feed.frame, case.interval_us)

    # The last bar is still open: no later tick has come to close it.
    assert len(got) == expected.height - 1
    assert [bar.start_us for bar in got] == expected["start_us"].to_list()[:-1]
    for field in ("open", "high", "low", "close", "volume", "notional"):
        np.testing.assert_allclose(
            [getattr(bar, field) for bar in got], expected[field].to_numpy()[:-1], rtol=RTOL, err_msg=field
        )


def test_a_bar_closes_only_when_a_tick_of_a_later_bar_arrives() -> None:
    builder = BarBuilder(SECOND)
    assert builder.add(quote(100, "10", "12")) is None
    assert builder.add(quote(SECOND - 1, "11", "13")) is None  # last µs of the same bar

    closed = builder.add(quote(SECOND, "9", "10"))  # first µs of the next one

    assert closed == Bar(
        start_us=(T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),
        open=11.0,
        high=12.0,
        low=11.0,
        close=12.0,
        volume=0.0,
        notional=0.0,
    )


def test_bars_are_aligned_to_the_epoch_not_to_the_first_tick() -> None:
    builder = BarBuilder(60 * SECOND)  # T0 is 15 s past a whole minute
    builder.add(trade(0, "100"))
    builder.add(trade(44 * SECOND, "101"))  # 12:30:59: same minute
    closed = builder.add(trade(45 * SECOND, "102"))  # 12:31:00: the next minute

    assert closed is not None
    assert datetime.fromtimestamp(closed.start_us / SECOND, UTC) == datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    assert (closed.open, closed.close) == (100.0, 101.0)


def test_price_is_the_mid_when_bid_and_ask_are_both_there_else_the_last_trade() -> None:
    builder = BarBuilder(SECOND)
    builder.add(tick_ingested(bid=Decimal("10"), ask=Decimal("11"), last=Decimal("50"), exchange_ts=at(1)))
    builder.add(tick_ingested(bid=Decimal("10"), ask=None, last=Decimal("12"), exchange_ts=at(2)))
    builder.add(tick_ingested(bid=None, ask=None, last=None, exchange_ts=at(3)))  # no price at all: ignored
    closed = builder.add(trade(SECOND, "1"))

    assert closed is not None
    assert (closed.open, closed.high, closed.low, closed.close) == (10.5, 12.0, 10.5, 12.0)


def test_volume_and_notional_come_from_trade_prints_only() -> None:
    builder = BarBuilder(SECOND)
    builder.add(quote(1, "99", "101"))
    builder.add(trade(2, "100", "0.5"))
    builder.add(trade(3, "102", "1.5"))
    builder.add(trade(4, "103"))  # a price without a size: no volume
    closed = builder.add(quote(SECOND, "99", "101"))

    assert closed is not None
    assert closed.volume == 2.0
    assert closed.notional == 100 * 0.5 + 102 * 1.5


def test_an_interval_without_ticks_makes_no_bar() -> None:
    builder = BarBuilder(SECOND)
    builder.add(trade(0, "1"))
    first = builder.add(trade(5 * SECOND, "2"))
    second = builder.add(trade(6 * SECOND, "3"))

    assert first is not None and second is not None
    assert second.start_us - first.start_us == 5 * SECOND


def test_a_tick_of_a_bar_already_closed_is_counted_and_ignored() -> None:
    builder = BarBuilder(SECOND)
    builder.add(trade(0, "100", "1"))
    builder.add(trade(SECOND, "200", "1"))  # closes the first bar

    assert builder.add(trade(SECOND - 1, "1", "1000")) is None
    closed = builder.add(trade(2 * SECOND, "300"))

    assert closed is not None and (closed.low, closed.volume) == (200.0, 1.0)
    assert builder.late_ticks == 1


def test_the_engine_reports_late_ticks_per_instrument() -> None:
    engine = SignalEngine(SignalConfig())
    for tick in (trade(0, "100"), trade(SECOND, "101"), trade(SECOND - 1, "99"), trade(5, "98")):
        engine.handle(tick)

    assert engine.late_ticks(tick.instrument) == 2
    assert engine.late_ticks("NOT-SEEN") == 0


def test_histdata_stamps_are_read_as_est_without_daylight_saving() -> None:
    # 20200101 170000065 at a fixed UTC-05:00.
    assert histdata_eurusd().ticks[0].exchange_ts == datetime(2020, 1, 1, 22, 0, 0, 65_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bar_interval": timedelta(seconds=7)}, "divide one day"),
        ({"bar_interval": timedelta(0)}, "divide one day"),
        ({"ema_fast": 26, "ema_slow": 12}, "ema_fast"),
        ({"rsi_oversold": 80.0}, "rsi_oversold"),
    ],
)
def test_a_config_that_cannot_work_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SignalConfig(**fields)  # type: ignore[arg-type]
