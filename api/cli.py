"""The `tradecore` command: the composition root for operators."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from schemas.errors import TradecoreError

if TYPE_CHECKING:
    from streams.exchanges import ExchangeSettings

app = typer.Typer(help="tradecore: an event-sourced trading core on Kafka.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: Kafka (KRaft), Postgres and the schema registry, without Docker.")
topics_app = typer.Typer(help="The Kafka topics of the design.")
db_app = typer.Typer(help="The write side's Postgres tables.")
users_app = typer.Typer(help="API users (a TOML file of names, argon2 hashes, roles and accounts).")
ingest_app = typer.Typer(help="Market data onto the ticks topic, from exchanges or files.", no_args_is_help=True)
instruments_app = typer.Typer(help="The instrument registry (TRADECORE_INSTRUMENTS_FILE).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(ingest_app, name="ingest")
app.add_typer(instruments_app, name="instruments")

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def _fail(err: TradecoreError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {err}", highlight=False)
    return typer.Exit(1)


@stack_app.command("up")
def stack_up(
    brokers: Annotated[int, typer.Option(help="Kafka nodes: 1, or 3 for a replicated KRaft cluster.")] = 1,
) -> None:
    """Start whatever is not running, wait until each component answers, write the endpoints to .stack/env."""
    from deploy.local.stack import LocalStack

    stack = LocalStack()
    try:
        endpoints = stack.up(brokers=brokers, report=lambda line: console.print(line, highlight=False))
    except TradecoreError as err:
        raise _fail(err) from err
    console.print(f"\nendpoints written to [bold]{stack.env_file}[/] (read by every tradecore command):")
    for key, value in endpoints.as_env().items():
        console.print(f"  {key}={value}", highlight=False)


@stack_app.command("down")
def stack_down(
    purge: Annotated[
        bool, typer.Option(help="Also delete the stack's data (Kafka log, Postgres); keeps the jars.")
    ] = False,
) -> None:
    """Stop the processes `stack up` started, and nothing else."""
    from deploy.local.stack import LocalStack

    try:
        LocalStack().down(purge=purge, report=lambda line: console.print(line, highlight=False))
    except TradecoreError as err:
        raise _fail(err) from err


@stack_app.command("status")
def stack_status() -> None:
    """Each component's health; exits 1 when any is not answering."""
    from deploy.local.stack import LocalStack

    try:
        rows = LocalStack().status()
    except TradecoreError as err:
        raise _fail(err) from err
    table = Table("component", "state", "endpoint", "pid")
    table.columns[2].overflow = "fold"
    colours = {"running": "green", "external": "cyan", "stopped": "yellow"}
    for row in rows:
        table.add_row(row.name, f"[{colours.get(row.state, 'red')}]{row.state}[/]", row.endpoint, str(row.pid or ""))
    console.print(table)
    if not all(row.ok for row in rows):
        raise typer.Exit(1)


@topics_app.command("ensure")
def topics_ensure(
    prefix: Annotated[str | None, typer.Option(help="Topic namespace (default: TRADECORE_TOPIC_PREFIX).")] = None,
) -> None:
    """Create the design's topics, or align an existing topic's config; refuses partition/RF changes."""
    from streams import kafka
    from streams.settings import KafkaSettings
    from streams.topics import TopicLayout, cluster_size, ensure_topics

    settings = KafkaSettings()
    client = kafka.admin(settings)
    try:
        layout = TopicLayout.for_cluster(cluster_size(client), settings.partitions)
        outcomes = ensure_topics(client, layout, settings.topic_prefix if prefix is None else prefix)
    except TradecoreError as err:
        raise _fail(err) from err
    except Exception as err:  # librdkafka reports an unreachable cluster as a KafkaException
        errors.print(f"[bold red]error:[/] Kafka at {settings.bootstrap_servers} did not answer: {err}")
        errors.print("  → run `tradecore stack up`, or set KAFKA_BOOTSTRAP_SERVERS")
        raise typer.Exit(1) from err
    table = Table("topic", "action", "detail")
    for outcome in outcomes:
        table.add_row(outcome.topic, outcome.action, outcome.detail)
    console.print(table)
    console.print(
        f"layout: {layout.partitions} partitions, RF {layout.replication_factor}, "
        f"min.insync.replicas {layout.min_insync_replicas}, retention.ms -1"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the write side's tables (schema command_side) to the newest revision."""
    from api import db
    from projections.settings import DatabaseSettings

    db.upgrade(DatabaseSettings().url)
    console.print("command_side tables are at the newest revision")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[list[str], typer.Option("--role", help="trader, viewer, risk or admin; repeatable.")],
    account: Annotated[
        list[str] | None, typer.Option("--account", help="An account a trader may trade; repeatable.")
    ] = None,
    file: Annotated[Path, typer.Option(help="The users file (TRADECORE_USERS_FILE).")] = Path("users.toml"),
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Add or replace a user; the password is stored only as an argon2 hash."""
    from api.auth import Role, add_user

    try:
        roles = [Role(r) for r in role]
    except ValueError as err:
        errors.print(f"[bold red]error:[/] {err}; roles are: {', '.join(r.value for r in Role)}")
        raise typer.Exit(2) from err
    add_user(file, name, password, roles, account or [])
    console.print(f"{name} saved to {file} ({', '.join(roles)})")


@app.command("api")
def serve_api(
    host: Annotated[str | None, typer.Option(help="Listen address (TRADECORE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (TRADECORE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (TRADECORE_WORKERS).")] = None,
) -> None:
    """Serve the command API (uvicorn)."""
    import uvicorn
    from pydantic import ValidationError

    from api.settings import ApiSettings

    try:
        settings = ApiSettings()
    except ValidationError as err:
        errors.print(f"[bold red]error:[/] API settings are not valid:\n{err}")
        errors.print("  → set TRADECORE_JWT_SECRET (e.g. `openssl rand -hex 32`) and TRADECORE_USERS_FILE")
        raise typer.Exit(1) from err
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level="warning",
        access_log=False,
        # Live streams (GET /v1/stream) never finish on their own: a stop cuts them after this, and their clients
        # resume elsewhere with Last-Event-ID.
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


@app.command("worker")
def worker(
    names: Annotated[list[str] | None, typer.Argument(help="Processors to run (default: all).")] = None,
    instance: Annotated[str, typer.Option(help="Stable slot id; the transactional id derives from it.")] = "0",
    input_prefix: Annotated[
        str | None, typer.Option(help="Namespace to read from (default TRADECORE_TOPIC_PREFIX): replays, audits.")
    ] = None,
    output_prefix: Annotated[
        str | None, typer.Option(help="Namespace to write to, and of the consumer group (default as above).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics (TRADECORE_METRICS_PORT; default 9400 + instance; 0: off).", min=0),
    ] = None,
    batch_ms: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="TRADECORE_BATCH_MS",
            help="Longest a transaction stays open, ms (default 100): outputs become visible to read_committed "
            "consumers up to this much later; shorter means more commits.",
        ),
    ] = None,
) -> None:
    """Run stream processors exactly once over Kafka until SIGTERM/SIGINT."""
    import dataclasses
    import logging

    from schemas.settings import RegistrySettings
    from streams import worker as workers
    from streams.host.runner import HostConfig
    from streams.settings import KafkaSettings, MetricsSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = HostConfig(instance=instance, input_prefix=input_prefix, output_prefix=output_prefix)
        if batch_ms is not None:
            config = dataclasses.replace(config, batch_ms=batch_ms)
        metrics = MetricsSettings() if metrics_port is None else MetricsSettings(metrics_port=metrics_port)
        workers.run(names or [], KafkaSettings(), RegistrySettings(), config, console.print, metrics=metrics)
    except KeyError as err:
        errors.print(f"[bold red]error:[/] {err.args[0]}")
        raise typer.Exit(2) from err
    except TradecoreError as err:
        raise _fail(err) from err


@ingest_app.command("file")
def ingest_file(
    path: Annotated[Path, typer.Argument(help="A CSV or Parquet file of quotes, trades or OHLCV bars.")],
    instrument: Annotated[str, typer.Option(help="The instrument the file is about (instruments file symbol).")],
    venue: Annotated[str | None, typer.Option(help="Venue to record (default: the instrument's).")] = None,
    speed: Annotated[
        str, typer.Option(help="max (as fast as possible), or xN: the recorded inter-arrival times divided by N.")
    ] = "max",
    on_error: Annotated[
        str, typer.Option(help="A bad row: skip it (reported with its line) or stop the run there.")
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
        str | None, typer.Option(help="With --columns: the time column is epoch numbers in s, ms or us.")
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

    if on_error not in ("skip", "stop"):
        errors.print(f"[bold red]error:[/] --on-error {on_error!r}: give skip or stop")
        raise typer.Exit(2)
    try:
        layout = None
        if columns is not None:
            unit = {"s": "s", "ms": "ms", "us": "us", None: None}.get(time_unit, "bad")
            if unit == "bad":
                raise files.IngestFileError(f"--time-unit {time_unit!r}: give s, ms or us")
            layout = replace(
                files.parse_columns(columns),
                time_format=time_format,
                time_zone=time_zone,
                time_unit=unit,  # type: ignore[arg-type]
                header=True,
            )
        pace = files.parse_speed(speed)
        path_ = instruments_file or Path(os.environ.get("TRADECORE_INSTRUMENTS_FILE", DEFAULT_FILE))
        instruments = InstrumentRegistry.from_file(path_)
    except TradecoreError as err:
        raise _fail(err) from err

    async def run(progress: Progress) -> files.Report:
        task = progress.add_task(path.name, total=None)
        async with write_side(KafkaSettings(), RegistrySettings(), DatabaseSettings(), instruments) as parts:
            return await files.ingest(
                parts.gateway,
                path,
                instrument,
                venue=venue,
                layout=layout,
                speed=pace,
                on_error=on_error,  # type: ignore[arg-type]
                bar_interval=None if bar_interval is None else timedelta(seconds=bar_interval),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                rebase=rebase_time,
            )

    columns_ = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns_, console=errors, transient=False) as progress:
            report = asyncio.run(run(progress))
    except TradecoreError as err:
        raise _fail(err) from err
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
) -> None:
    """Replay recorded ticks through the live processors in a namespace of their own; report trades, PnL, Sharpe,
    max drawdown and win rate (printed, and written as Parquet and an HTML page with the equity curve)."""
    import asyncio
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from api.wiring import write_side
    from domain.instruments import DEFAULT_FILE, InstrumentRegistry
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams import kafka as kafka_clients
    from streams import pipeline
    from streams.backtest import report as reports
    from streams.backtest import run
    from streams.ingest import files
    from streams.settings import KafkaSettings
    from streams.topics import delete_namespace

    params = dict(p.split("=", 1) for p in (param or []) if "=" in p)
    if len(params) != len(param or []):
        errors.print("[bold red]error:[/] --param takes k=v")
        raise typer.Exit(2)
    job = run.Backtest(data, instrument, strategy, params, account, keep)
    registry = RegistrySettings()
    settings = run.namespace(KafkaSettings())
    log = Path(tempfile.mkdtemp(prefix="tradecore-backtest-")) / "worker.log"
    try:
        env = job.strategy_env()
        instruments = InstrumentRegistry.from_file(Path(os.environ.get("TRADECORE_INSTRUMENTS_FILE", DEFAULT_FILE)))
        pipeline.prepare(settings)
    except TradecoreError as err:
        raise _fail(err) from err
    console.print(f"namespace [bold]{settings.topic_prefix}[/]; processors' log: {log}", highlight=False)
    worker = pipeline.start(["worker"], settings, env, log)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors) as bar:
            ingest = bar.add_task("ticks in", total=None)

            async def feed() -> files.Report:
                async with write_side(settings, registry, DatabaseSettings(), instruments) as parts:
                    return await files.ingest(
                        parts.gateway,
                        data,
                        instrument,
                        progress=lambda done, total: bar.update(ingest, completed=done, total=total),
                    )

            fed = asyncio.run(feed())
            behind = bar.add_task("processing (records behind)", total=None)
            pipeline.wait_until_settled(settings, worker, log, report=lambda n: bar.update(behind, completed=n))
        pipeline.stop(worker)
        seen = run.outcomes(settings, registry, account, instrument)
        result = reports.build(
            instrument, account, seen.fills, seen.positions, seen.ticks, seen.decisions, seen.expired
        )
        written = result.write(out)
    except TradecoreError as err:
        raise _fail(err) from err
    finally:
        pipeline.stop(worker)
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


@app.command("demo")
def demo(
    once: Annotated[bool, typer.Option(help="Exit after the summary instead of serving the API until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port of the demo's API (the next free one if taken).")] = 8000,
    data: Annotated[
        Path | None, typer.Option(help="Quotes to replay (default: the recorded BTCUSDT quotes in ../shared).")
    ] = None,
    speed: Annotated[float, typer.Option(help="Pace of the quotes: 1 is as recorded, 2 twice as fast.")] = 1.0,
    source: Annotated[
        str,
        typer.Option(
            help="Quotes: auto (recorded if ../shared has them, else live through ccxt if Binance answers, else "
            "synthetic), recorded, live or synthetic."
        ),
    ] = "auto",
) -> None:
    """The whole loop in a namespace of its own: API, processors, projector, quotes, a scripted trader, a summary."""
    from api import demo as demos
    from deploy.local.process import port_in_use

    if source not in ("auto", "recorded", "live", "synthetic"):
        errors.print(f"[bold red]error:[/] --source {source!r}: give auto, recorded, live or synthetic")
        raise typer.Exit(2)
    while port_in_use(port):
        port += 1
    try:
        result = demos.run(console, once=once, port=port, data=data, speed=speed, source=source)
    except TradecoreError as err:
        raise _fail(err) from err
    if not result.fills:
        errors.print("[yellow]warning:[/] nothing filled; see the logs under .stack/demo/")


def _projectors(names: list[str] | None):  # type: ignore[no-untyped-def]
    from projections.projectors import select

    try:
        return select(names)
    except KeyError as err:
        errors.print(f"[bold red]error:[/] {err.args[0]}")
        raise typer.Exit(2) from err


@app.command("project")
def project(
    names: Annotated[list[str] | None, typer.Argument(help="Projections to run (default: all).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per Postgres transaction at most.")] = 5000,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics (TRADECORE_METRICS_PORT; default 9300; 0: off).", min=0),
    ] = None,
) -> None:
    """Fold the topics into the Postgres read models until SIGTERM/SIGINT, each batch and its checkpoint in one
    transaction; migrates the namespace's read-model schema first."""
    import logging
    import signal
    import threading

    from projections import namespace
    from projections.db import conninfo, engine
    from projections.runner import ProjectionRunner, RunnerConfig
    from projections.settings import DatabaseSettings
    from schemas.registry import registry_client
    from schemas.settings import RegistrySettings
    from streams import metrics, tracing
    from streams.settings import KafkaSettings, MetricsSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpx2", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    projectors = _projectors(names)
    settings, database = KafkaSettings(), DatabaseSettings()
    schema = namespace.live_schema(settings.topic_prefix)
    observed = MetricsSettings() if metrics_port is None else MetricsSettings(metrics_port=metrics_port)
    tracing.configure("projector")
    served = metrics.expose(observed.metrics_host, observed.metrics_port, default=metrics.PROJECTOR_METRICS_PORT)
    if served:
        console.print(f"metrics on http://{observed.metrics_host}:{served}/metrics", highlight=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        db = engine(database)
        namespace.upgrade(db, schema)
        db.dispose()
        runner = ProjectionRunner(
            projectors,
            settings,
            registry_client(RegistrySettings()),
            conninfo(database),
            schema,
            config=RunnerConfig(batch_max=batch_size),
        )
    except TradecoreError as err:
        raise _fail(err) from err
    console.print(f"projecting {', '.join(p.name for p in projectors)} into schema {schema}", highlight=False)
    try:
        runner.run(stop, report=lambda line: console.print(line, highlight=False))
    finally:
        runner.close()
    console.print(f"stopped after {runner.stats.events} records in {runner.stats.batches} batches")


def _progress_bar() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} events/s"),
        TimeRemainingColumn(),
        console=console,
    )


def _replay_command(names: list[str] | None, verb: str):  # type: ignore[no-untyped-def]
    """Run rebuild or verify with a progress bar; returns its result."""
    import time

    from projections import rebuild as rebuilding
    from projections.db import conninfo, engine
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams.settings import KafkaSettings

    projectors = _projectors(names)
    settings, database = KafkaSettings(), DatabaseSettings()
    db = engine(database)
    started = time.monotonic()
    with _progress_bar() as bar:
        task = bar.add_task(f"{verb} {', '.join(p.name for p in projectors)}", total=None, rate=0.0)

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=rate)

        try:
            if verb == "rebuilding":
                return rebuilding.rebuild(
                    projectors, settings, RegistrySettings(), db, conninfo(database), progress=progress
                )
            return rebuilding.verify(
                projectors, settings, RegistrySettings(), db, conninfo(database), progress=progress
            )
        except TradecoreError as err:
            raise _fail(err) from err
        finally:
            db.dispose()


@app.command("rebuild")
def rebuild(
    projection: Annotated[str | None, typer.Argument(help="The projection to rebuild (default: all).")] = None,
) -> None:
    """Replay the topics from offset 0 into a shadow schema and swap the rebuilt tables in atomically; queries
    keep reading the old tables until the swap, and a running `tradecore project` carries on from the new ones."""
    read = _replay_command([projection] if projection else None, "rebuilding")
    console.print(f"rebuilt from {read:,} records and swapped in")


@app.command("verify")
def verify() -> None:
    """Rebuild every read model into a scratch schema up to the live checkpoints and compare row for row; exits 1
    and names each difference if there is any."""
    differences = _replay_command(None, "verifying")
    if differences:
        for difference in differences[:50]:
            errors.print(f"[red]differs:[/] {difference}", highlight=False)
        errors.print(f"[bold red]{len(differences)} rows differ[/] between the live read models and a rebuild")
        errors.print("  → `tradecore rebuild` replaces the live tables with the rebuilt ones")
        raise typer.Exit(1)
    console.print("the live read models equal a rebuild from the log: 0 differences")


ExchangeOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--exchange-option",
        help="ccxt config KEY=VALUE (dotted keys, JSON values), repeatable: options.fetchCurrencies=false.",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(help="Send every REST call to this scheme://host:port (a mirror); TRADECORE_EXCHANGE_BASE_URL."),
]


def _exchange_settings(base_url: str | None) -> ExchangeSettings:
    from streams.exchanges import ExchangeSettings

    return ExchangeSettings(exchange_base_url=base_url) if base_url else ExchangeSettings()


@ingest_app.command("ccxt")
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
    from streams.ingest.exchange import IngestStats
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
            exchange=_exchange_settings(base_url),
        )

    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}: {task.fields[status]}"), console=console) as bar:
            stats = asyncio.run(main(bar))
    except TradecoreError as err:
        raise _fail(err) from err
    except Exception as err:  # ccxt's own errors: bad credentials, unknown exchange options …
        errors.print(f"[bold red]error:[/] {type(err).__name__}: {err}", highlight=False)
        raise typer.Exit(1) from err
    console.print(f"stopped: {line(stats)}")


@instruments_app.command("import")
def instruments_import(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    symbols: Annotated[
        list[str] | None, typer.Option("--symbols", help="Markets to import (BTC/USDT or BTCUSDT); default all.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the TOML here (default: print it).")] = None,
    exchange_option: ExchangeOptions = None,
    base_url: BaseUrl = None,
) -> None:
    """Instruments from the exchange's markets (ccxt load_markets), in the registry's TOML format."""
    from streams.exchanges import connect, import_instruments, parse_options

    try:
        client = connect(exchange, _exchange_settings(base_url), parse_options(exchange_option or []))
        registry, skipped = import_instruments(client, symbols or [])
    except TradecoreError as err:
        raise _fail(err) from err
    except Exception as err:  # ccxt: the exchange did not answer, or answered an error
        errors.print(f"[bold red]error:[/] {exchange} markets could not be loaded: {type(err).__name__}: {err}")
        raise typer.Exit(1) from err
    for reason in skipped:
        errors.print(f"[yellow]skipped:[/] {reason}", highlight=False)
    if out is None:
        console.print(registry.to_toml(), highlight=False, markup=False)
        return
    out.write_text(registry.to_toml())
    console.print(f"{len(registry)} instruments written to {out} (use it: TRADECORE_INSTRUMENTS_FILE={out})")


@app.command("live-venue")
def live_venue(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    poll_interval: Annotated[float, typer.Option(help="Seconds between polls of the orders still working.")] = 1.0,
    exchange_option: ExchangeOptions = None,
    base_url: BaseUrl = None,
) -> None:
    """Execute the orders of the live instruments (TRADECORE_VENUE_LIVE_INSTRUMENTS) at EXCHANGE, until SIGTERM."""
    import logging
    import signal
    import threading

    from domain.instruments import InstrumentRegistry
    from schemas.registry import registry_client
    from schemas.serde import register_all
    from schemas.settings import RegistrySettings
    from streams.exchanges import connect, parse_options
    from streams.execution.adapter import AdapterStats, LiveVenueAdapter
    from streams.processors import ProcessorSettings
    from streams.settings import KafkaSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    credentials = _exchange_settings(base_url)
    if not credentials.exchange_api_key.get_secret_value() or not credentials.exchange_secret.get_secret_value():
        errors.print(
            "[bold red]error:[/] the live venue signs its orders: set TRADECORE_EXCHANGE_API_KEY and "
            "TRADECORE_EXCHANGE_SECRET (never on the command line)"
        )
        raise typer.Exit(2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def report(s: AdapterStats) -> None:
        console.print(
            f"{exchange}: rebuilt {s.rebuilt_orders} orders from the log; placed {s.placed}, found already placed "
            f"{s.looked_up}, refused {s.refused}, cancels {s.cancels}, events written {s.events}, retries {s.retries}",
            highlight=False,
        )

    try:
        kafka_settings = KafkaSettings()
        client = registry_client(RegistrySettings())
        register_all(client, kafka_settings.topic_prefix)
        processors = ProcessorSettings()
        adapter = LiveVenueAdapter(
            connect(exchange, credentials, parse_options(exchange_option or [])),
            kafka_settings,
            client,
            InstrumentRegistry.from_file(processors.instruments_file),
            processors.venue_live_instruments,
            poll_interval_s=poll_interval,
        )
        adapter.run(stop, report)
    except TradecoreError as err:
        raise _fail(err) from err
    report(adapter.stats)


@app.command("replay")
def replay(
    topic: Annotated[str, typer.Option(help="Topic to read, without namespace: orders, executions, positions, ...")],
    start: Annotated[
        str | None, typer.Option("--from", help="First offset (every partition), or an ISO time: 2021-01-08T10:00Z.")
    ] = None,
    stop: Annotated[
        str | None, typer.Option("--to", help="Offset or ISO time to stop before (exclusive); default: the end now.")
    ] = None,
    conditions: Annotated[
        list[str] | None,
        typer.Option("--filter", help="field=value on any envelope or event field; repeatable (AND; OR per field)."),
    ] = None,
    out: Annotated[str, typer.Option(help="FILE.parquet, FILE.csv, or - for JSON lines on stdout.")] = "-",
    partition: Annotated[list[int] | None, typer.Option(help="Only this partition; repeatable.")] = None,
    order: Annotated[str, typer.Option(help="time: merged by event time; partition: as fetched.")] = "time",
    prefix: Annotated[str | None, typer.Option(help="Topic namespace (default: TRADECORE_TOPIC_PREFIX).")] = None,
) -> None:
    """Stream a topic's history, decoded, to the console, a CSV or a Parquet file, with progress."""
    import signal
    import sys
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from schemas.registry import registry_client
    from schemas.settings import RegistrySettings
    from streams.replay.output import sink_for
    from streams.replay.reader import Bound, Order, TopicReader
    from streams.replay.rows import RowFilter, columns
    from streams.replay.topic import ReplaySummary
    from streams.replay.topic import replay as run_replay
    from streams.settings import KafkaSettings

    settings = KafkaSettings() if prefix is None else KafkaSettings(topic_prefix=prefix)
    summary = ReplaySummary()
    try:
        sequence = Order(order)
        schema = columns(topic)
        keep = RowFilter(conditions or [], schema)
        first, last = (None if b is None else Bound.parse(b) for b in (start, stop))
        reader = TopicReader(settings, registry_client(RegistrySettings()), topic)
    except ValueError as err:
        errors.print(f"[bold red]error:[/] --order is time or partition, not {order!r}")
        raise typer.Exit(2) from err
    except TradecoreError as err:
        raise _fail(err) from err
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("offsets  {task.percentage:>3.0f}%  {task.fields[rate]}"),
        TimeRemainingColumn(),
        console=errors,
    )
    # Ctrl-C ends the replay after the record in hand, every row read so far written; a second one aborts.
    interrupted = threading.Event()

    def interrupt(*_: object) -> None:
        interrupted.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, interrupt)
    with reader:
        try:
            ranges = reader.ranges(first, last, partition)
            sink = sink_for(out, schema, sys.stdout)
        except TradecoreError as err:
            raise _fail(err) from err
        total = sum(end - begin for begin, end in ranges.values())
        task = progress.add_task(f"{reader.name}", total=total, rate="")

        def advance(offsets: int) -> None:
            speed = progress.tasks[task].speed
            progress.update(task, advance=offsets, rate=f"{speed:,.0f} offsets/s" if speed else "")

        try:
            with progress:
                run_replay(reader, ranges, keep, sink, summary, order=sequence, progress=advance, stop=interrupted)
        except TradecoreError as err:
            raise _fail(err) from err
        finally:
            sink.close()
    where = "stdout" if out == "-" else out
    errors.print(
        ("interrupted: " if interrupted.is_set() else "")
        + f"read {summary.read:,} records, wrote {summary.written:,} rows to {where}"
        + (f"; {summary.undecodable:,} did not decode (see the error column)" if summary.undecodable else ""),
        highlight=False,
    )
    if interrupted.is_set():
        raise typer.Exit(130)


@app.command("verify-processors")
def verify_processors(
    source: Annotated[str, typer.Option(help="Namespace whose processors' outputs are verified (its topic prefix).")],
    names: Annotated[
        list[str] | None, typer.Argument(help="Processors (default: risk execution executions-by-account positions).")
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="Fresh namespace to re-derive into (default: verify-<random>.).")
    ] = None,
) -> None:
    """Re-run processors over a namespace's recorded inputs into a shadow namespace and compare every derived
    event, hash by hash; exit 1 on any difference."""
    import logging
    import uuid

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from schemas.registry import registry_client
    from schemas.settings import RegistrySettings
    from streams.replay.verify import OUTPUTS, compare, shadow_run
    from streams.settings import KafkaSettings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    chosen = names or ["risk", "execution", "executions-by-account", "positions"]
    into = shadow or f"verify-{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings()
    client = registry_client(RegistrySettings())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors)
    task = progress.add_task(f"re-deriving {', '.join(chosen)} from {source} into {into}", total=None)
    try:
        with progress:
            shadow_run(
                chosen,
                settings,
                client,
                source,
                into,
                lambda done, total: progress.update(task, completed=done, total=total),
            )
        results = [compare(settings, client, source, into, OUTPUTS[name]) for name in chosen]
    except TradecoreError as err:
        raise _fail(err) from err
    table = Table("topic", "source", "shadow", "identical", "differing", "missing", "extra", "undecodable")
    for r in results:
        colour = "green" if r.ok else "red"
        table.add_row(
            f"[{colour}]{r.topic}[/]",
            *(str(n) for n in (r.source, r.shadow, r.identical, len(r.differing), len(r.missing), len(r.extra))),
            str(r.undecodable),
        )
    console.print(table)
    for r in results:
        console.print(f"{r.topic}: {r.identical} of {r.source} identical", highlight=False)
        for label, ids in (
            ("differs", r.differing),
            ("missing from the shadow", r.missing),
            ("only in the shadow", r.extra),
        ):
            for event_id in ids[:10]:
                console.print(f"  {r.topic}: {event_id} {label}", highlight=False)
            if len(ids) > 10:
                console.print(f"  {r.topic}: … and {len(ids) - 10} more {label}", highlight=False)
    if not all(r.ok for r in results):
        errors.print(f"[bold red]the processors did not derive the same events[/] (shadow namespace: {into})")
        raise typer.Exit(1)
    console.print(f"every derived event is identical (shadow namespace: {into})")
