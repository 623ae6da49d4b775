"""The `tradecore` command: the composition root for operators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
