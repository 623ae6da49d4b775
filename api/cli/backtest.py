"""`tradecore backtest`: recorded ticks through the live processors, in a namespace of their own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.reporting import Commands, console, errors, fail

app = Commands()


@app.command("backtest")
def backtest(
    data: Annotated[Path, typer.Option(help="Recorded ticks: any file `tradecore ingest file` reads.")],
    instrument: Annotated[str, typer.Option(help="The instrument the file is about, and the strategy trades.")],
    strategy: Annotated[str, typer.Option(help="Strategy: follow (one indicator's signals, fixed clip).")] = "follow",
    param: Annotated[
        list[str] | None,
        typer.Option(help="k=v, repeatable: indicator, quantity, and any signal setting (ema_fast, bar_interval…)."),
    ] = None,
    account: Annotated[str, typer.Option(help="The account the strategy trades for.")] = "BT-1",
    out: Annotated[Path, typer.Option(help="Directory for report.html and the Parquet files.")] = Path(
        "backtest-report"
    ),
    keep: Annotated[bool, typer.Option(help="Keep the run's topics (its whole event log) for audit.")] = False,
    sweep: Annotated[
        list[str] | None,
        typer.Option(help="NAME=V1,V2,..., repeatable: run the grid of these values in process (no Kafka)."),
    ] = None,
    walk_forward: Annotated[
        int | None, typer.Option(help="With --sweep: K folds in time; choose on each, score on the next.")
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="With --sweep: worker processes (default: one per CPU).")] = None,
    top: Annotated[int, typer.Option(help="With --sweep: equity curves of the best N points in the report.")] = 5,
) -> None:
    """Replay recorded ticks through the live processors in a namespace of their own; report trades, PnL, Sharpe,
    max drawdown and win rate (printed, and written as Parquet and an HTML page with the equity curve). With
    --sweep: the grid of parameters, each point replayed in process, into sweep.parquet and report.html."""
    params = dict(p.split("=", 1) for p in (param or []) if "=" in p)
    if len(params) != len(param or []):
        raise fail("--param takes k=v", code=2)
    if sweep:
        from api.cli.sweep import run_sweep

        run_sweep(data, instrument, strategy, params, account, out, sweep, walk_forward, jobs, top)
        return
    if walk_forward is not None or jobs is not None:
        raise fail("--walk-forward and --jobs go with --sweep NAME=V1,V2,...", code=2)
    import asyncio
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from api.wiring import write_side
    from deploy import launch
    from domain.instruments import DEFAULT_FILE, InstrumentRegistry
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams import kafka as kafka_clients
    from streams import pipeline
    from streams.backtest import report as reports
    from streams.backtest import run
    from streams.ingest import files
    from streams.kafka.topics import delete_namespace
    from streams.settings import KafkaSettings

    job = run.Backtest(data, instrument, strategy, params, account, keep)
    registry = RegistrySettings()
    settings = run.namespace(KafkaSettings())
    log = Path(tempfile.mkdtemp(prefix="tradecore-backtest-")) / "worker.log"
    env = job.strategy_env()
    instruments = InstrumentRegistry.from_file(Path(os.environ.get("TRADECORE_INSTRUMENTS_FILE", DEFAULT_FILE)))
    pipeline.prepare(settings)
    console.print(f"namespace [bold]{settings.topic_prefix}[/]; processors' log: {log}", highlight=False)
    worker: launch.Service | None = None
    try:
        worker = launch.start_worker(log, {**env, "TRADECORE_TOPIC_PREFIX": settings.topic_prefix})
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors) as bar:
            ingest = bar.add_task("ticks in", total=None)

            async def feed() -> files.Report:
                async with write_side(settings, registry, DatabaseSettings(), instruments, loads=True) as parts:
                    return await files.ingest(
                        parts.gateway,
                        data,
                        instrument,
                        progress=lambda done, total: bar.update(ingest, completed=done, total=total),
                    )

            fed = asyncio.run(feed())
            behind = bar.add_task("processing (records behind)", total=None)
            pipeline.wait_until_settled(settings, worker.process, log, report=lambda n: bar.update(behind, completed=n))
        worker.stop()
        seen = run.outcomes(settings, registry, account, instrument)
        result = reports.build(
            instrument, account, seen.fills, seen.positions, seen.ticks, seen.decisions, seen.expired
        )
        written = result.write(out)
    finally:
        if worker is not None:
            worker.stop()
        if not keep:
            delete_namespace(kafka_clients.admin(settings), settings.topic_prefix)
    table = Table(title=f"backtest: {strategy} on {instrument} ({fed.appended:,} ticks of {data.name})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    s = result.summary
    rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(s.rejected.items())) or "none"
    for name, value in (
        ("orders placed by the strategy", f"{s.orders:,}"),
        ("rejected by risk", rejected),
        ("expired unfilled at the venue", f"{s.expired:,}"),
        ("fills (trades)", f"{s.fills:,}"),
        ("traded quantity", f"{s.traded_quantity.normalize():f}"),
        ("PnL (equity at the end)", f"{s.pnl:,.2f}"),
        ("realized PnL", f"{s.realized_pnl:,.2f}"),
        ("fees", f"{s.fees:,.2f}"),
        ("final position", f"{s.final_position.normalize():f}"),
        ("Sharpe (annualised, 1-min changes)", "n/a" if s.sharpe is None else f"{s.sharpe:.2f}"),
        ("max drawdown", f"{s.max_drawdown:,.2f}"),
        ("win rate", "n/a" if s.win_rate is None else f"{s.win_rate:.1%}"),
    ):
        table.add_row(name, value)
    console.print(table)
    console.print(f"report: {written['html']} (and {', '.join(str(p) for k, p in written.items() if k != 'html')})")
