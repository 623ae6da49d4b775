"""Walk-forward choice and the report, on results made by hand (no replay)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from streams.research.metrics import Score, Window
from streams.research.page import page
from streams.research.sweep import PointResult, frame

T0 = datetime(2021, 1, 8, tzinfo=UTC)
WINDOWS = [Window(T0, T0 + timedelta(seconds=10)), Window(T0 + timedelta(seconds=10), None)]


def _score(sharpe: float | None, pnl: float = 0.0) -> Score:
    return Score(pnl=pnl, sharpe=sharpe, max_drawdown=0.0, win_rate=None, trades=0, fees=0.0)


def _point(fast: str, slow: str, in_sample: float | None, out_of_sample: float | None) -> PointResult:
    scores = [_score(in_sample), _score(out_of_sample, pnl=1.0)]
    return PointResult({"ema_fast": fast, "ema_slow": slow}, scores, _score(None), [(0, 0.0), (1_000_000, 1.0)])


RESULTS = [
    _point("3", "13", None, 9.0),  # no in-sample Sharpe: ranks last, however well it then does
    _point("3", "21", 1.5, -2.0),
    _point("5", "13", 1.5, 0.5),  # ties the one before: the first in grid order wins
    _point("5", "21", -4.0, 3.0),
]


def test_each_fold_takes_the_best_in_sample_point_and_scores_it_on_the_next_window() -> None:
    rows = frame(RESULTS, WINDOWS, ("ema_fast", "ema_slow"))
    assert rows.height == 8
    fold1 = rows.filter(pl.col("fold") == 1)
    [chosen] = fold1.filter("chosen").iter_rows(named=True)
    assert (chosen["ema_fast"], chosen["ema_slow"]) == ("3", "21")
    assert chosen["in_sample_sharpe"] == 1.5 and chosen["sharpe"] == -2.0  # side by side: the overfit shows
    assert rows.filter(pl.col("fold") == 0)["chosen"].sum() == 0


def test_the_report_maps_out_of_sample_sharpe_over_two_parameters() -> None:
    rows = frame(RESULTS, WINDOWS, ("ema_fast", "ema_slow"))
    html = page(rows, RESULTS, ("ema_fast", "ema_slow"), "BTCUSDT", top=2)
    assert html.count("class='cell'") == 4
    assert "ema_fast=3 ema_slow=13: 9.00" in html  # each cell's out-of-sample Sharpe
    assert "id='folds'" in html and html.count("<polyline") == 2  # the top 2 curves
    assert "<script" not in html


def test_one_swept_parameter_makes_a_one_row_heatmap() -> None:
    results = [PointResult({"ema_fast": f}, [_score(1.0)], _score(1.0), [(0, 0.0), (1, 1.0)]) for f in ("3", "5")]
    rows = frame(results, WINDOWS[:1], ("ema_fast",))
    assert rows.filter("chosen")["ema_fast"].to_list() == ["3"]
    assert page(rows, results, ("ema_fast",), "BTCUSDT", top=5).count("class='cell'") == 2
