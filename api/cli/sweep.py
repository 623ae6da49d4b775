"""`tradecore backtest --sweep`: the grid of parameters, each point replayed in process, one per worker process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli.reporting import console, errors
from streams.backtest.run import STRATEGIES, BacktestError
from streams.research import folds, grid, page, sweep

SHARPE_EVERY = timedelta(seconds=1)


def run_sweep(
    data: Path,
    instrument: str,
    strategy: str,
    fixed: dict[str, str],
    account: str,
    out: Path,
    sweeps: list[str],
    walk_forward: int | None,
    jobs: int | None,
    top: int,
) -> None:
    """Check everything first (names, values, folds), then run the grid and write sweep.parquet and report.html."""
    if strategy not in STRATEGIES:
        raise BacktestError(f"unknown strategy {strategy!r}", hint=f"known: {', '.join(STRATEGIES)}")
    if jobs is not None and jobs < 1:
        raise BacktestError(f"--jobs {jobs}: give 1 or more worker processes")
    if top < 1:
        raise BacktestError(f"--top {top}: give 1 or more")
    points = grid.grid(grid.parse(sweeps), fixed, instrument, account)
    for params, why in points.skipped:
        console.print(f"skipped {', '.join(f'{k}={params[k]}' for k in points.names)}: {why}", highlight=False)
    ticks = sweep.load(data, instrument)
    windows = folds.windows(sorted(t.envelope.occurred_at for t in ticks), walk_forward)
    job = sweep.Job(instrument, account, windows, SHARPE_EVERY)
    with Progress(
        TextColumn("grid points"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors
    ) as bar:
        task = bar.add_task("grid", total=len(points.points))
        results = sweep.run(data, job, points.points, jobs, progress=lambda n: bar.update(task, completed=n))
    rows = sweep.frame(results, windows, points.names)
    out.mkdir(parents=True, exist_ok=True)
    rows.write_parquet(out / "sweep.parquet")
    (out / "report.html").write_text(page.page(rows, results, points.names, instrument, top))
    table = Table(
        title=f"sweep on {instrument}: {len(results)} points, {len(windows)} window(s) of {len(ticks):,} ticks"
    )
    for column in ("fold", *points.names, "in-sample Sharpe", "out-of-sample Sharpe", "PnL"):
        table.add_column(column, justify="right")
    best = rows.filter("chosen").sort("fold")
    for r in best.iter_rows(named=True):
        table.add_row(
            str(r["fold"]),
            *(r[n] for n in points.names),
            _num(r["in_sample_sharpe"]),
            _num(r["sharpe"]),
            f"{r['pnl']:,.2f}",
        )
    console.print(table)
    console.print(f"report: {out / 'report.html'} (and {out / 'sweep.parquet'})")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
