"""Model features: the rows the engine's incremental indicators give equal a whole-series computation over the bars."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from domain.signals import SignalConfig
from domain.signals.bars import Bar, BarBuilder
from domain.signals.features import FEATURES, RETURN_WINDOWS, FeatureSet, feature_rows
from domain.signals.indicators import PastCloses
from tests.domain.signals import reference
from tests.domain.signals.market import CASES, Case
from tests.domain.signals.replay import config


def closed_bars(case: Case) -> list[Bar]:
    builder = BarBuilder(case.interval_us)
    return [bar for tick in case.feed.ticks if (bar := builder.add(tick)) is not None]


def whole_series(case: Case, cfg: SignalConfig) -> pl.DataFrame:
    """Every feature for every bar, from the reference's vectorised indicators (NaN while one is not warmed up)."""
    table = reference.bars(case.feed.frame, case.interval_us)
    close = table["close"].to_numpy()
    _, middle, upper = reference.bollinger(close, cfg.bollinger_period, cfg.bollinger_width)
    spread = upper - middle
    vwap = reference.vwap(table)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = {
            "ema_gap": (reference.ema(close, cfg.ema_fast) - reference.ema(close, cfg.ema_slow)) / close,
            "rsi": reference.rsi(close, cfg.rsi_period) / 100.0 - 0.5,
            "bollinger_position": np.where(spread > 0, (close - middle) / spread, np.where(spread == 0, 0.0, np.nan)),
            "atr_ratio": reference.atr(table["high"].to_numpy(), table["low"].to_numpy(), close, cfg.atr_period)
            / close,
            "vwap_distance": np.where(np.isnan(vwap), 0.0, (close - vwap) / close),
        }
    series = pl.Series(close)
    for n in RETURN_WINDOWS:
        columns[f"return_{n}"] = (series / series.shift(n) - 1.0).fill_null(np.nan).to_numpy()
    return pl.DataFrame({"start_us": table["start_us"], **columns})


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "ftx-btcperp-1m"], ids=str)
def test_feature_rows_equal_a_whole_series_computation(case: Case) -> None:
    cfg = config(case)
    kept, rows = feature_rows(closed_bars(case), cfg)
    expected = whole_series(case, cfg)
    warm = expected.filter(pl.all_horizontal(pl.col(FEATURES).is_not_nan()))

    assert [bar.start_us for bar in kept] == warm["start_us"].to_list()[: len(kept)]
    assert len(kept) >= len(warm) - 1  # the last bar stays open in the engine: no later tick closes it
    assert len(kept) > 20, "the case must warm every feature up"
    np.testing.assert_allclose(rows, warm.select(FEATURES).to_numpy()[: len(kept)], rtol=1e-7, atol=1e-9)


def test_features_continue_identically_after_a_state_round_trip() -> None:
    case = CASES[0]
    bars = closed_bars(case)
    _, uninterrupted = feature_rows(bars, config(case))

    features = FeatureSet(config(case))
    rows = []
    for i, bar in enumerate(bars):
        if i % 37 == 0:
            restored = FeatureSet(config(case))
            restored.restore(features.state())
            features = restored
        if (row := features.update(bar)) is not None:
            rows.append(row)

    assert np.array_equal(np.array(rows), uninterrupted)


def test_past_closes_give_the_change_over_each_window_once_it_has_enough_closes() -> None:
    closes = PastCloses(3)
    for close in (100.0, 110.0, 99.0):
        closes.update(close)
    assert closes.change(1) == pytest.approx(99.0 / 110.0 - 1.0)
    assert closes.change(2) == pytest.approx(-0.01)
    assert np.isnan(closes.change(3))
    closes.update(121.0)
    closes.update(132.0)
    assert closes.change(3) == pytest.approx(132.0 / 110.0 - 1.0)
