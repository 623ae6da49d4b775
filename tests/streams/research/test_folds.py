"""Walk-forward windows: consecutive, equal numbers of ticks, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.backtest.run import BacktestError
from streams.research.folds import MIN_TICKS, windows
from streams.research.metrics import Window

T0 = datetime(2021, 1, 8, tzinfo=UTC)
TIMES = [T0 + timedelta(milliseconds=10 * i) for i in range(90)]


def test_k_folds_cut_the_ticks_into_k_consecutive_windows() -> None:
    assert windows(TIMES, 3) == [
        Window(TIMES[0], TIMES[30]),
        Window(TIMES[30], TIMES[60]),
        Window(TIMES[60], None),
    ]


def test_without_walk_forward_one_window_holds_everything() -> None:
    assert windows(TIMES, None) == [Window(TIMES[0], None)]


@pytest.mark.parametrize("folds", [1, 0, -2])
def test_fewer_than_two_folds_is_refused(folds: int) -> None:
    with pytest.raises(BacktestError, match="at least 2 folds") as err:
        windows(TIMES, folds)
    assert "--walk-forward 3" in (err.value.hint or "")


def test_too_few_ticks_for_k_folds_says_how_many_would_do() -> None:
    with pytest.raises(
        BacktestError, match=f"90 ticks are too few for 5 folds .each needs at least {MIN_TICKS}"
    ) as err:
        windows(TIMES, 5)
    assert "at most 4 folds" in (err.value.hint or "")


def test_no_ticks_is_refused() -> None:
    with pytest.raises(BacktestError, match="no ticks"):
        windows([], 3)
