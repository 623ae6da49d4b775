"""`tradecore replay` and `tradecore verify-processors`: a topic's history read back, and re-derived to compare."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from api.cli.reporting import Commands, console, errors

app = Commands()


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
    order: Annotated[
        Literal["time", "partition"], typer.Option(help="time: merged by event time; partition: as fetched.")
    ] = "time",
    prefix: Annotated[str | None, typer.Option(help="Topic namespace (default: TRADECORE_TOPIC_PREFIX).")] = None,
) -> None:
    """Stream a topic's history, decoded, to the console, a CSV or a Parquet file, with progress."""
    import signal
    import sys
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from schemas.settings import RegistrySettings
    from streams.kafka.registry import registry_client
    from streams.replay.output import sink_for
    from streams.replay.reader import Bound, Order, TopicReader
    from streams.replay.rows import RowFilter, columns
    from streams.replay.topic import ReplaySummary
    from streams.replay.topic import replay as run_replay
    from streams.settings import KafkaSettings

    settings = KafkaSettings() if prefix is None else KafkaSettings(topic_prefix=prefix)
    summary = ReplaySummary()
    schema = columns(topic)
    keep = RowFilter(conditions or [], schema)
    first, last = (None if b is None else Bound.parse(b) for b in (start, stop))
    reader = TopicReader(settings, registry_client(RegistrySettings()), topic)
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
        ranges = reader.ranges(first, last, partition)
        sink = sink_for(out, schema, sys.stdout)
        total = sum(end - begin for begin, end in ranges.values())
        task = progress.add_task(f"{reader.name}", total=total, rate="")

        def advance(offsets: int) -> None:
            speed = progress.tasks[task].speed
            progress.update(task, advance=offsets, rate=f"{speed:,.0f} offsets/s" if speed else "")

        try:
            with progress:
                run_replay(reader, ranges, keep, sink, summary, order=Order(order), progress=advance, stop=interrupted)
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

    from schemas.settings import RegistrySettings
    from streams.kafka.registry import registry_client
    from streams.replay.verify import OUTPUTS, compare, shadow_run
    from streams.settings import KafkaSettings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    chosen = names or ["risk", "execution", "executions-by-account", "positions"]
    into = shadow or f"verify-{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings()
    client = registry_client(RegistrySettings())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors)
    task = progress.add_task(f"re-deriving {', '.join(chosen)} from {source} into {into}", total=None)
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
    table = Table("topic", "source", "shadow", "identical", "differing", "missing", "extra", "reordered", "undecodable")
    for r in results:
        colour = "green" if r.ok else "red"
        differences = (r.differing, r.missing, r.extra, r.reordered)
        table.add_row(
            f"[{colour}]{r.topic}[/]",
            *(str(n) for n in (r.source, r.shadow, r.identical, *map(len, differences), r.undecodable)),
        )
    console.print(table)
    for r in results:
        console.print(f"{r.topic}: {r.identical} of {r.source} identical", highlight=False)
        for label, ids in (
            ("differs", r.differing),
            ("missing from the shadow", r.missing),
            ("only in the shadow", r.extra),
            ("holds its events in another order in the shadow", [f"aggregate {a}" for a in r.reordered]),
        ):
            for event_id in ids[:10]:
                console.print(f"  {r.topic}: {event_id} {label}", highlight=False)
            if len(ids) > 10:
                console.print(f"  {r.topic}: … and {len(ids) - 10} more {label}", highlight=False)
    if not all(r.ok for r in results):
        errors.print(f"[bold red]the processors did not derive the same events[/] (shadow namespace: {into})")
        raise typer.Exit(1)
    console.print(f"every derived event is identical (shadow namespace: {into})")
