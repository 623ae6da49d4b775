"""How a run did over a window of time: PnL, Sharpe, max drawdown, win rate, trades and fees.

Money is counted in the instrument's quote currency from a flat start, as in ``streams.backtest.report``: equity is
cash plus the position marked at each tick's mid. A window's figures start from the equity just before it (its
``base``), so windows of one run add up: their PnLs sum to the run's.

* **PnL**: equity at the window's last tick minus the base.
* **Sharpe**: mean over sample standard deviation of the equity's changes from one ``every`` interval to the next
  (the last equity of each interval with ticks; the base before the first), times sqrt(intervals per year) —
  annualised, risk-free rate 0, a Sharpe of PnL changes (there is no capital base). None with fewer than two
  changes or none that differ.
* **Max drawdown**: the largest fall of equity from its running peak, the base included.
* **Win rate**: the share of position-reducing fills whose realized PnL was positive; None without one.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

YEAR = timedelta(days=365)


def sharpe(changes: Sequence[float], every: timedelta) -> float | None:
    """Annualised Sharpe of equity ``changes`` taken each ``every``."""
    if len(changes) < 2:
        return None
    std = statistics.stdev(changes)
    if std == 0 or math.isnan(std):
        return None
    return statistics.fmean(changes) / std * math.sqrt(YEAR / every)


def max_drawdown(equity: Sequence[float], base: float = 0.0) -> float:
    """The largest fall of ``equity`` from its running peak, starting from ``base``."""
    peak, deepest = base, 0.0
    for value in equity:
        peak = max(peak, value)
        deepest = max(deepest, peak - value)
    return deepest


def win_rate(realized: Sequence[float]) -> float | None:
    """The share of positive ``realized`` PnL steps (one per position-reducing fill)."""
    return sum(step > 0 for step in realized) / len(realized) if realized else None


@dataclass(frozen=True)
class Window:
    """``start`` <= event time < ``end`` (``end`` None: to the end of the data)."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Score:
    pnl: float
    sharpe: float | None
    max_drawdown: float
    win_rate: float | None
    trades: int
    fees: float


def _within(frame: pl.DataFrame, window: Window) -> pl.DataFrame:
    inside = pl.col("time") >= window.start
    if window.end is not None:
        inside &= pl.col("time") < window.end
    return frame.filter(inside)


def score(equity: pl.DataFrame, fills: pl.DataFrame, realized: pl.DataFrame, window: Window, every: timedelta) -> Score:
    """A run's figures over ``window``.

    ``equity``: time, equity (float) at each tick; ``fills``: time, fee; ``realized``: time, step (the realized PnL a
    position-reducing fill added) — all sorted by time.
    """
    before = equity.filter(pl.col("time") < window.start)
    base = float(before["equity"][-1]) if before.height else 0.0
    inside = _within(equity, window)
    values = inside["equity"].to_list()
    sampled = (
        inside.group_by_dynamic("time", every=every).agg(pl.col("equity").last())["equity"].to_list()
        if inside.height
        else []
    )
    path = [base, *sampled]
    changes = [b - a for a, b in itertools.pairwise(path)]
    paid = _within(fills, window)
    return Score(
        pnl=(values[-1] - base) if values else 0.0,
        sharpe=sharpe(changes, every),
        max_drawdown=max_drawdown(values, base),
        win_rate=win_rate(_within(realized, window)["step"].to_list()),
        trades=paid.height,
        fees=float(paid["fee"].sum()) if paid.height else 0.0,
    )
