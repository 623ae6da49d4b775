"""`tradecore ingest`: market data onto the ticks topic, from files or exchanges."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from api.cli.exchange import BaseUrl, ExchangeOptions, exchange_settings
from api.cli.reporting import Commands, console, errors, foreign_errors

if TYPE_CHECKING:
    from rich.progress import Progress

    from streams.ingest import files
    from streams.ingest.exchange import IngestStats

app = Commands(help="Market data onto the ticks topic, from exchanges or files.", no_args_is_help=True)


@app.command("file")
def ingest_file(
    path: Annotated[Path, typer.Argument(help="A CSV or Parquet file of quotes, trades or OHLCV bars.")],
    instrument: Annotated[str, typer.Option(help="The instrument the file is about (instruments file symbol).")],
    venue: Annotated[str | None, typer.Option(help="Venue to record (default: the instrument's).")] = None,
    speed: Annotated[
        str, typer.Option(help="max (as fast as possible), or xN: the recorded inter-arrival times divided by N.")
    ] = "max",
    on_error: Annotated[
        Literal["skip", "stop"], typer.Option(help="A bad row: skip it (reported with its line) or stop the run there.")
    ] = "skip",
    columns: Annotated[
        str | None,
        typer.Option(help="Map columns yourself: time=COL,bid=COL,ask=COL,last=COL,bid_size=..,last_size=.."),
    ] = None,
    time_format: Annotated[
        str | None, typer.Option(help="With --columns: strftime format of a text time column (default ISO 8601).")
    ] = None,
    time_zone: Annotated[str, typer.Option(help="With --columns: zone of times without an offset.")] = "UTC",
    time_unit: Annotated[
        Literal["s", "ms", "us"] | None, typer.Option(help="With --columns: the time column is epoch numbers.")
    ] = None,
    bar_interval: Annotated[
        float | None, typer.Option(help="Bars: their length in seconds (default: the most common gap).")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Also write every rejected row (line, reason) here (CSV).")
    ] = None,
    rebase_time: Annotated[
        bool, typer.Option(help="Shift the times so the file starts now: a recording replayed as a live feed.")
    ] = False,
    instruments_file: Annotated[
        Path | None, typer.Option("--instruments", help="Instruments file (default TRADECORE_INSTRUMENTS_FILE).")
    ] = None,
    from_line: Annotated[
        int | None,
        typer.Option(help="Skip the rows before this line of the file: go on where a failed run says to.", min=1),
    ] = None,
) -> None:
    """Append a recorded file's ticks to `ticks`, validated like POST /v1/ticks, with a progress bar."""
    import asyncio
    import csv
    from dataclasses import replace
    from datetime import timedelta

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.wiring import write_side
    from domain.instruments import DEFAULT_FILE, InstrumentRegistry
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams.ingest import files
    from streams.settings import KafkaSettings

    layout = None
    if columns is not None:
        layout = replace(
            files.parse_columns(columns), time_format=time_format, time_zone=time_zone, time_unit=time_unit, header=True
        )
    pace = files.parse_speed(speed)
    path_ = instruments_file or Path(os.environ.get("TRADECORE_INSTRUMENTS_FILE", DEFAULT_FILE))
    instruments = InstrumentRegistry.from_file(path_)

    async def run(progress: Progress) -> files.Report:
        task = progress.add_task(path.name, total=None)
        async with write_side(
            KafkaSettings(), RegistrySettings(), DatabaseSettings(), instruments, loads=True
        ) as parts:
            return await files.ingest(
                parts.gateway,
                path,
                instrument,
                venue=venue,
                layout=layout,
                speed=pace,
                on_error=on_error,
                bar_interval=None if bar_interval is None else timedelta(seconds=bar_interval),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                rebase=rebase_time,
                from_line=from_line,
            )

    columns_ = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
    )
    with Progress(*columns_, console=errors, transient=False) as progress:
        report = asyncio.run(run(progress))
    for bad in report.rejected[:20]:
        errors.print(f"[yellow]skipped[/] {path}:{bad.line}: {bad.reason}", highlight=False)
    if len(report.rejected) > 20:
        errors.print(
            f"… and {len(report.rejected) - 20} more rows skipped" + ("" if rejects else " (--rejects FILE lists all)")
        )
    if rejects is not None:
        with rejects.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason"])
            writer.writerows((bad.line, bad.reason) for bad in report.rejected)
    console.print(
        f"{report.appended:,} ticks from {report.rows:,} rows of {path.name} ({report.layout}) in "
        f"{report.seconds:.1f} s, {report.per_s:,.0f} ticks/s; {len(report.rejected)} rows skipped"
        + (f"; {report.rounded} values rounded to 8 decimal places" if report.rounded else ""),
        highlight=False,
    )


@app.command("ccxt")
def ingest_ccxt(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    symbols: Annotated[list[str], typer.Argument(help="Markets: unified (BTC/USDT) or the exchange's ids (BTCUSDT).")],
    interval: Annotated[float, typer.Option(help="Seconds between polling rounds.")] = 1.0,
    trades: Annotated[bool, typer.Option(help="Also poll trades (each becomes a last-price tick).")] = True,
    max_events: Annotated[int | None, typer.Option(help="Stop after appending this many ticks.")] = None,
    exchange_option: ExchangeOptions = None,
    base_url: BaseUrl = None,
) -> None:
    """Poll an exchange's tickers and trades through ccxt and append them as TickIngested, until Ctrl-C."""
    import asyncio
    import signal

    from rich.progress import Progress, SpinnerColumn, TextColumn

    from api.ingest import ingest_from_exchange
    from streams.exchanges import parse_options
    from streams.processors import ProcessorSettings

    def line(s: IngestStats) -> str:
        note = f" [yellow]last retry: {s.last_error}[/]" if s.last_error else ""
        return (
            f"{s.events} ticks ({s.quotes} quotes, {s.trades} trades), {s.rate():.1f}/s, "
            f"{s.rounds} rounds, {s.retries} retries{note}"
        )

    async def main(progress: Progress) -> IngestStats:
        task = progress.add_task(f"{exchange} {' '.join(symbols)}", status="connecting")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await ingest_from_exchange(
            exchange,
            symbols,
            options=parse_options(exchange_option or []),
            instruments_file=ProcessorSettings().instruments_file,
            interval_s=interval,
            trades=trades,
            max_events=max_events,
            stop=stop,
            on_progress=lambda s: progress.update(task, status=line(s)),
            exchange=exchange_settings(base_url),
        )

    # ccxt's own errors: bad credentials, unknown exchange options …
    with (
        foreign_errors(f"{exchange} failed"),
        Progress(SpinnerColumn(), TextColumn("{task.description}: {task.fields[status]}"), console=console) as bar,
    ):
        stats = asyncio.run(main(bar))
    console.print(f"stopped: {line(stats)}")
