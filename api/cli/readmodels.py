"""`tradecore project`, `rebuild` and `verify`: the Postgres read models folded from the log."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api.cli.reporting import Commands, console, errors, fail

if TYPE_CHECKING:
    from rich.progress import Progress

    from projections.projectors import Projector

app = Commands()
Result = TypeVar("Result")


def _projectors(names: list[str] | None) -> list[Projector]:
    from projections.projectors import select

    try:
        return select(names)
    except KeyError as err:
        raise fail(err.args[0], code=2) from err


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
    from schemas.settings import RegistrySettings
    from streams import metrics, tracing
    from streams.kafka.registry import registry_client
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
    console.print(f"projecting {', '.join(p.name for p in projectors)} into schema {schema}", highlight=False)
    try:
        runner.run(stop, report=lambda line: console.print(line, highlight=False))
    finally:
        runner.close()
    console.print(f"stopped after {runner.stats.events} records in {runner.stats.batches} batches")


def _progress_bar() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} events/s"),
        TimeRemainingColumn(),
        console=console,
    )


@app.command("rebuild")
def rebuild(
    projection: Annotated[str | None, typer.Argument(help="The projection to rebuild (default: all).")] = None,
) -> None:
    """Replay the topics from offset 0 into a shadow schema and swap the rebuilt tables in atomically; queries
    keep reading the old tables until the swap, and a running `tradecore project` carries on from the new ones."""
    from projections import rebuild as rebuilding

    read = _with_progress([projection] if projection else None, "rebuilding", rebuilding.rebuild)
    console.print(f"rebuilt from {read:,} records and swapped in")


@app.command("verify")
def verify() -> None:
    """Rebuild every read model into a scratch schema up to the live checkpoints and compare row for row; exits 1
    and names each difference if there is any."""
    from projections import rebuild as rebuilding

    differences = _with_progress(None, "verifying", rebuilding.verify)
    if differences:
        for difference in differences[:50]:
            errors.print(f"[red]differs:[/] {difference}", highlight=False)
        errors.print(f"[bold red]{len(differences)} rows differ[/] between the live read models and a rebuild")
        errors.print("  → `tradecore rebuild` replaces the live tables with the rebuilt ones")
        raise typer.Exit(1)
    console.print("the live read models equal a rebuild from the log: 0 differences")


def _with_progress(names: list[str] | None, verb: str, job: Callable[..., Result]) -> Result:
    """Run a rebuild or a verify of the projections ``names`` with a progress bar; returns its result."""
    import time

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
            return job(projectors, settings, RegistrySettings(), db, conninfo(database), progress=progress)
        finally:
            db.dispose()
