"""Walk-forward folds: the ticks cut into K consecutive windows of (nearly) equal numbers of ticks.

Fold k (1 <= k < K) takes window k-1 as its in-sample window and window k as its out-of-sample one: parameters are
chosen on what came just before and scored on what came next, as they would have been traded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from streams.backtest.run import BacktestError
from streams.research.metrics import Window

MIN_TICKS = 20  # per window: fewer cannot warm up an indicator and still trade


def windows(times: Sequence[datetime], folds: int | None) -> list[Window]:
    """``times`` (the ticks' event times, sorted) cut into ``folds`` windows; None: one window, all of them.

    Raises:
        BacktestError: fewer than 2 folds, or too few ticks for that many.
    """
    if not times:
        raise BacktestError("the data holds no ticks", hint="check --data and --instrument")
    if folds is None:
        return [Window(times[0], None)]
    if folds < 2:
        raise BacktestError(
            f"--walk-forward {folds}: walk-forward needs at least 2 folds (an in-sample window, then an "
            "out-of-sample one)",
            hint="give --walk-forward 3, say, or leave it out to score the whole file once",
        )
    if len(times) < folds * MIN_TICKS:
        raise BacktestError(
            f"--walk-forward {folds}: {len(times):,} ticks are too few for {folds} folds "
            f"(each needs at least {MIN_TICKS})",
            hint=f"use at most {len(times) // MIN_TICKS} folds, or a longer file",
        )
    starts = [times[len(times) * k // folds] for k in range(folds)]
    if len(set(starts)) < folds:
        raise BacktestError(f"--walk-forward {folds}: the ticks' times do not split into {folds} distinct windows")
    return [Window(start, end) for start, end in zip(starts, [*starts[1:], None], strict=True)]
