"""Each indicator, fed bar by bar, equals an independent whole-series computation to 1e-9 relative."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from domain.signals.bars import DAY_US
from domain.signals.indicators import (
    AverageTrueRange,
    BollingerBands,
    Crossing,
    RelativeStrengthIndex,
    RollingMoments,
    SessionVwap,
    SmoothedAverage,
)
from tests.domain.signals import reference
from tests.domain.signals.market import CASES, ftx_bars

RTOL = 1e-9


@functools.cache
def bar_series(name: str) -> pl.DataFrame:
    """Bars with start_us, high, low, close, volume and notional."""
    if name == "ftx-btcperp-1m":
        # FTX reports USD volume: as a quantity of volume / close at the close, notional is the volume itself.
        return ftx_bars().with_columns(
            start_us=pl.col("ts").dt.epoch("us"),
            volume=pl.col("volume") / pl.col("close"),
            notional=pl.col("volume"),
        )
    case = next(case for case in CASES if case.name == name)
    return reference.bars(case.feed.frame, case.interval_us)


SERIES = ["ftx-btcperp-1m", "histdata-eurusd-1s", "binance-btcusdt-100ms"]


def assert_same_series(got: list[float], expected: np.ndarray) -> None:
    got_array = np.asarray(got)
    # Warm-up: NaN exactly where the whole-series computation has no value yet.
    np.testing.assert_array_equal(np.isnan(got_array), np.isnan(expected))
    np.testing.assert_allclose(got_array, expected, rtol=RTOL, atol=0.0)


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("period", [12, 26])
def test_ema_equals_polars_ewm_mean_seeded_with_the_simple_mean(series: str, period: int) -> None:
    close = bar_series(series)["close"].to_numpy()
    ema = SmoothedAverage.ema(period)

    got = [ema.update(x) for x in close]

    assert_same_series(got, reference.ema(close, period))
    assert got[period - 1] == pytest.approx(close[:period].mean(), rel=1e-12)  # the seed: a real n-bar mean


@pytest.mark.parametrize("series", SERIES)
def test_rsi_equals_wilder_smoothing_of_gains_and_losses(series: str) -> None:
    close = bar_series(series)["close"].to_numpy()
    rsi = RelativeStrengthIndex(14)

    got = [rsi.update(x) for x in close]

    assert_same_series(got, reference.rsi(close, 14))
    assert np.isnan(got[13]) and not np.isnan(got[14])  # 14 changes need 15 closes


@pytest.mark.parametrize("series", SERIES)
def test_bollinger_bands_use_the_population_standard_deviation_of_the_window(series: str) -> None:
    close = bar_series(series)["close"].to_numpy()
    bands = BollingerBands(20, 2.0)
    got: dict[str, list[float]] = {"lower": [], "middle": [], "upper": [], "sigma": []}

    for x in close:
        bands.update(x)
        for name, values in got.items():
            values.append(getattr(bands, name))

    lower, middle, upper = reference.bollinger(close, 20, 2.0)
    sigma = np.concatenate(
        [np.full(19, np.nan), np.lib.stride_tricks.sliding_window_view(close, 20).std(axis=1, ddof=0)]
    )
    assert_same_series(got["lower"], lower)
    assert_same_series(got["middle"], middle)
    assert_same_series(got["upper"], upper)
    assert_same_series(got["sigma"], sigma)  # sigma itself, not only the bands it barely moves


@pytest.mark.parametrize("series", SERIES)
def test_atr_equals_wilder_smoothing_of_true_ranges(series: str) -> None:
    bars = bar_series(series)
    high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
    atr = AverageTrueRange(14)

    got = [atr.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]

    assert_same_series(got, reference.atr(high, low, close, 14))


@pytest.mark.parametrize("series", ["ftx-btcperp-1m", "binance-btcusdt-100ms"])
def test_vwap_equals_cumulative_notional_over_volume_per_utc_day(series: str) -> None:
    bars = bar_series(series)
    vwap = SessionVwap()

    got = [
        vwap.update(start // DAY_US, notional, volume)
        for start, notional, volume in bars.select("start_us", "notional", "volume").iter_rows()
    ]

    assert_same_series(got, reference.vwap(bars))


def test_vwap_restarts_at_utc_midnight() -> None:
    bars = bar_series("ftx-btcperp-1m")  # 2021-12-31 23:01 to 2022-02-01 05:31: 32 midnights
    vwap = SessionVwap()
    firsts = []
    for start, close, notional, volume in bars.select("start_us", "close", "notional", "volume").iter_rows():
        value = vwap.update(start // DAY_US, notional, volume)
        if start % DAY_US == 0:
            firsts.append((value, close))

    assert len(firsts) == 32
    # The first minute of a day is the whole session so far: its VWAP is that minute's price.
    assert all(value == pytest.approx(close, rel=1e-12) for value, close in firsts)


def test_vwap_is_undefined_until_something_trades() -> None:
    vwap = SessionVwap()
    assert math.isnan(vwap.update(0, 0.0, 0.0))
    assert vwap.update(0, 200.0, 2.0) == 100.0
    assert math.isnan(vwap.update(1, 0.0, 0.0))  # a new day, nothing traded yet


def test_rsi_of_a_market_that_never_moved_is_neutral_and_of_one_that_only_rose_is_100() -> None:
    flat = RelativeStrengthIndex(3)
    rising = RelativeStrengthIndex(3)
    assert [flat.update(1.0) for _ in range(4)][-1] == 50.0
    assert [rising.update(float(x)) for x in range(4)][-1] == 100.0


def test_rolling_moments_stay_exact_over_a_long_stream_with_tiny_variance() -> None:
    # A price of ~1.12 moving by 1e-9: sums of raw squares would lose every digit of the variance.
    prices = 1.12 + 1e-9 * np.sin(np.arange(50_000) * 0.37)
    moments = RollingMoments(20)
    for x in prices:
        moments.update(x)

    window = [Fraction(x) for x in prices[-20:]]  # exact rational arithmetic as the judge
    mean = sum(window, Fraction(0)) / 20
    variance = sum(((x - mean) ** 2 for x in window), Fraction(0)) / 20
    assert moments.mean == pytest.approx(float(mean), rel=1e-15)
    assert moments.variance == pytest.approx(float(variance), rel=1e-12)


def test_bollinger_sigma_is_the_population_one() -> None:
    bands = BollingerBands(4, 2.0)
    for x in (1.0, 2.0, 3.0, 4.0):
        bands.update(x)
    assert bands.sigma == pytest.approx(math.sqrt(1.25))  # the sample sigma would be sqrt(5/3)
    assert (bands.lower, bands.middle, bands.upper) == pytest.approx(
        (2.5 - 2 * bands.sigma, 2.5, 2.5 + 2 * bands.sigma)
    )


def test_a_crossing_needs_a_side_seen_before_and_touching_the_level_is_not_crossing() -> None:
    crossing = Crossing()
    assert crossing.update(1.0, 2.0) == 0  # first side seen: below, no crossing
    assert crossing.update(2.0, 2.0) == 0  # on the level: still below
    assert crossing.update(2.0 + 1e-12, 2.0) == 0  # float noise, not a move
    assert crossing.update(3.0, 2.0) == 1
    assert crossing.update(4.0, 2.0) == 0
    assert crossing.update(1.0, 2.0) == -1
    crossing.reset()
    assert crossing.update(3.0, 2.0) == 0
