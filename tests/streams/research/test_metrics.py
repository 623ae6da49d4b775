"""Sweep metrics against series small enough to compute by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from streams.research.metrics import Window, max_drawdown, score, sharpe, win_rate

T0 = datetime(2021, 1, 8, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_sharpe_is_mean_over_sample_deviation_annualised() -> None:
    # changes 1, -1, 1, 3: mean 1; sample variance (0 + 4 + 0 + 4) / 3 = 8/3; 365 daily periods a year
    assert sharpe([1.0, -1.0, 1.0, 3.0], timedelta(days=1)) == pytest.approx(math.sqrt(365 / (8 / 3)))


def test_no_sharpe_without_two_changes_that_differ() -> None:
    assert sharpe([2.0], SECOND) is None
    assert sharpe([0.5, 0.5, 0.5], SECOND) is None


def test_max_drawdown_is_the_deepest_fall_from_a_running_peak() -> None:
    assert max_drawdown([1.0, 3.0, 2.0, 5.0, 1.0, 4.0]) == 4.0  # 5 -> 1
    assert max_drawdown([1.0, 3.0], base=10.0) == 9.0  # the window starts at 10: that is its first peak
    assert max_drawdown([1.0, 2.0, 3.0]) == 0.0


def test_win_rate_is_the_share_of_positive_realized_steps() -> None:
    assert win_rate([1.0, -2.0, 3.0, 0.0]) == 0.5  # a flat close is not a win
    assert win_rate([]) is None


def test_a_window_starts_from_the_equity_before_it() -> None:
    equity = pl.DataFrame(
        {"time": [T0 + i * SECOND for i in range(5)], "equity": [0.0, 2.0, 1.0, 4.0, 3.0]},
        schema={"time": pl.Datetime("us", "UTC"), "equity": pl.Float64},
    )
    fills = pl.DataFrame(
        {"time": [T0 + SECOND, T0 + 3 * SECOND], "fee": [0.25, 0.5]},
        schema={"time": pl.Datetime("us", "UTC"), "fee": pl.Float64},
    )
    realized = pl.DataFrame(
        {"time": [T0 + 2 * SECOND, T0 + 4 * SECOND], "step": [-1.0, 2.0]},
        schema={"time": pl.Datetime("us", "UTC"), "step": pl.Float64},
    )
    s = score(equity, fills, realized, Window(T0 + SECOND, T0 + 4 * SECOND), SECOND)
    # inside: 2, 1, 4 from a base of 0 -> changes 2, -1, 3: mean 4/3, sample variance 13/3 ... by hand:
    changes = [2.0, -1.0, 3.0]
    mean = sum(changes) / 3
    std = math.sqrt(sum((c - mean) ** 2 for c in changes) / 2)
    assert s.pnl == 4.0
    assert s.sharpe == pytest.approx(mean / std * math.sqrt(365 * 86400))
    assert s.max_drawdown == 1.0  # 2 -> 1
    assert s.trades == 2 and s.fees == 0.75
    assert s.win_rate == 0.0  # the one close inside lost
    last = score(equity, fills, realized, Window(T0 + 4 * SECOND, None), SECOND)
    assert last.pnl == -1.0 and last.max_drawdown == 1.0 and last.win_rate == 1.0 and last.sharpe is None
