"""A parameter sweep: each grid point replayed in process (``streams.research.replay``), one per worker process,
scored over each walk-forward window; the best in-sample point of each fold scored out of sample.

Every grid point runs once over the whole file — indicators warm up once, as in a single backtest — and its
figures are cut per window (``streams.research.metrics``). Fold k's parameters are the point with the best Sharpe
over window k-1 (a point without a Sharpe ranks last; ties go to the first in grid order), scored over window k.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from domain.instruments import InstrumentRegistry
from schemas.events import OrderFilled, PositionChanged, TickIngested
from streams.backtest import report
from streams.research import replay
from streams.research.metrics import Score, Window, score

CURVE_POINTS = 400  # equity samples kept per grid point for the report's curves

_ticks: list[TickIngested] = []  # per worker process: the file's ticks, read once


@dataclass(frozen=True)
class Job:
    instrument: str
    account: str
    windows: list[Window]
    every: timedelta


@dataclass(frozen=True)
class PointResult:
    params: dict[str, str]
    scores: list[Score]  # one per window
    whole: Score  # over the whole file
    curve: list[tuple[int, float]]  # (µs since the epoch, equity), thinned


def load(path: Path, instrument: str) -> list[TickIngested]:
    return replay.file_ticks(path, instrument, InstrumentRegistry.from_file())


def _init(path: Path, instrument: str) -> None:
    global _ticks
    _ticks = load(path, instrument)


def run_point(job: Job, params: dict[str, str], ticks: Sequence[TickIngested] | None = None) -> PointResult:
    """Replay the ticks with ``params`` and score the run over each of ``job.windows``."""
    chosen = replay.settings(job.instrument, job.account, params)
    pipeline = replay.replay(_ticks if ticks is None else ticks, chosen)
    fills = [e for e in pipeline.events("executions") if isinstance(e, OrderFilled) and e.account_id == job.account]
    positions = [e for e in pipeline.events("positions") if isinstance(e, PositionChanged)]
    ticks_seen = [e for e in pipeline.events("ticks") if isinstance(e, TickIngested)]
    by_time = lambda e: (e.envelope.occurred_at, e.envelope.sequence)  # noqa: E731
    built = report.build(job.instrument, job.account, sorted(fills, key=by_time), sorted(positions, key=by_time),
                         sorted(ticks_seen, key=by_time))  # fmt: skip
    equity = built.equity.select("time", pl.col("equity").cast(pl.Float64))
    paid = built.fills.select("time", pl.col("fee").cast(pl.Float64))
    realized = pl.DataFrame(
        _realized_steps(sorted(positions, key=by_time)),
        schema={"time": pl.Datetime("us", "UTC"), "step": pl.Float64},
        orient="row",
    )
    scores = [score(equity, paid, realized, w, job.every) for w in job.windows]
    whole = score(equity, paid, realized, Window(job.windows[0].start, None), job.every)
    stride = max(1, equity.height // CURVE_POINTS)
    thinned = equity.gather_every(stride)
    curve = list(zip(thinned["time"].dt.epoch("us").to_list(), thinned["equity"].to_list(), strict=True))
    return PointResult(params, scores, whole, curve)


def _realized_steps(positions: Sequence[PositionChanged]) -> list[tuple[datetime, float]]:
    """(time, realized PnL added) of each position-reducing fill, as the backtest report counts wins."""
    steps, before = [], 0.0
    for p in positions:
        if float(p.realized_pnl) != before:
            steps.append((p.envelope.occurred_at, float(p.realized_pnl) - before))
        before = float(p.realized_pnl)
    return steps


def run(
    path: Path,
    job: Job,
    points: list[dict[str, str]],
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[PointResult]:
    """Every grid point, ``jobs`` at a time in worker processes (default: one per CPU), in grid order."""
    workers = max(1, min(jobs or os.cpu_count() or 1, len(points)))
    results: list[PointResult] = []
    # Spawned, not forked: polars' thread pool does not survive a fork (a forked worker hangs in its first read).
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, spawn, initializer=_init, initargs=(path, job.instrument)) as pool:
        for result in pool.map(run_point, [job] * len(points), points):
            results.append(result)
            if progress is not None:
                progress(len(results))
    return results


def chosen(results: Sequence[PointResult], windows: int) -> list[int | None]:
    """Per fold (window) k >= 1, the index of the point with the best Sharpe over window k-1; None for window 0."""
    return [None, *(_best(r.scores[k - 1] for r in results) for k in range(1, windows))]


def _best(scores: Iterable[Score]) -> int:
    """The index of the best Sharpe (a missing one ranks last; ties: the first)."""
    ranked = [(s.sharpe is not None, s.sharpe or 0.0, -i) for i, s in enumerate(scores)]
    return -max(ranked)[2]


def frame(results: Sequence[PointResult], windows: Sequence[Window], names: Sequence[str]) -> pl.DataFrame:
    """One row per grid point and fold: its parameters, the window, its figures, the in-sample Sharpe before it and
    whether walk-forward chose it for this fold."""
    picks = chosen(results, len(windows)) if len(windows) > 1 else [_best(r.scores[0] for r in results)]
    rows = []
    for i, result in enumerate(results):
        for k, (window, s) in enumerate(zip(windows, result.scores, strict=True)):
            rows.append(
                {
                    **{name: result.params[name] for name in names},
                    "point": i,
                    "fold": k,
                    "start": window.start,
                    "end": window.end,
                    "pnl": s.pnl,
                    "sharpe": s.sharpe,
                    "max_drawdown": s.max_drawdown,
                    "win_rate": s.win_rate,
                    "trades": s.trades,
                    "fees": s.fees,
                    "in_sample_sharpe": result.scores[k - 1].sharpe if k else None,
                    "chosen": picks[k] == i,
                }
            )
    schema: dict[str, pl.DataType] = {
        "start": pl.Datetime("us", "UTC"),
        "end": pl.Datetime("us", "UTC"),
        "sharpe": pl.Float64(),
        "win_rate": pl.Float64(),
        "in_sample_sharpe": pl.Float64(),
    }
    return pl.DataFrame(rows, schema_overrides=schema)
