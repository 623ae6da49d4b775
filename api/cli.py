"""The `tradecore` command: the composition root for operators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from schemas.errors import TradecoreError

app = typer.Typer(help="tradecore: an event-sourced trading core on Kafka.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: Kafka (KRaft), Postgres and the schema registry, without Docker.")
topics_app = typer.Typer(help="The Kafka topics of the design.")
db_app = typer.Typer(help="The write side's Postgres tables.")
users_app = typer.Typer(help="API users (a TOML file of names, argon2 hashes, roles and accounts).")
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")

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
) -> None:
    """Run stream processors exactly once over Kafka until SIGTERM/SIGINT."""
    import logging

    from schemas.settings import RegistrySettings
    from streams import worker as workers
    from streams.host.runner import HostConfig
    from streams.settings import KafkaSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = HostConfig(instance=instance, input_prefix=input_prefix, output_prefix=output_prefix)
        workers.run(names or [], KafkaSettings(), RegistrySettings(), config, console.print)
    except KeyError as err:
        errors.print(f"[bold red]error:[/] {err.args[0]}")
        raise typer.Exit(2) from err
    except TradecoreError as err:
        raise _fail(err) from err


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
    from streams.settings import KafkaSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpx2", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    projectors = _projectors(names)
    settings, database = KafkaSettings(), DatabaseSettings()
    schema = namespace.live_schema(settings.topic_prefix)
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
    from schemas.registry import registry_client
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
                    projectors, settings, registry_client(RegistrySettings()), db, conninfo(database), progress=progress
                )
            return rebuilding.verify(
                projectors, settings, registry_client(RegistrySettings()), db, conninfo(database), progress=progress
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
