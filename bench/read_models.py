"""Read-side benchmark (issues 5 and 16): events/s projected into Postgres per projection and for a full rebuild,
each beside a raw binary COPY of the same rows and a raw confluent-kafka consumer of the same records, in one run.

    .venv/bin/python bench/read_models.py                       # 200,000 events, 3 repeats
    .venv/bin/python bench/read_models.py --events 1000000 --rebuild-only --repeat 1   # the rebuild target
    .venv/bin/python bench/read_models.py --quick               # smoke test

What runs, in a fresh topic namespace ``bench-<run>.`` on the real stack:

* a valid event flow, produced once (``bench/volume.py``): the recorded Binance BTCUSDT quotes as ticks, an order
  (placed, accepted, filled, position changed) for every fourth quote over ``--accounts`` accounts, a signal every
  50 orders, each account's limits — replicated lap after lap with shifted times and new ids up to ``--events``,
  encoded with the batch encoder;
* each projection alone (``projections.runner.ProjectionRunner`` over its topics, into a fresh schema, from offset
  0 to the end): events read per second of wall time, and this process's CPU seconds (Postgres's are not counted);
* the full rebuild (``projections.rebuild.rebuild``: every projection into the shadow schema, then the swap);
* references, same run: a raw ``confluent_kafka.Consumer`` (read_committed) reading the same records, and a raw
  binary ``COPY`` of the very rows each projection wrote (read back into Arrow, encoded by pgpq, no Python per row)
  into an empty table of the same shape.

Medians over ``--repeat`` runs. Progress on stderr, a table on stdout, one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
import psycopg  # noqa: E402
import volume  # noqa: E402  (bench/volume.py, beside this file)
from confluent_kafka import TopicPartition  # noqa: E402
from pgpq import ArrowToPostgresBinaryEncoder  # noqa: E402
from pgpq.encoders import LargeStringEncoderBuilder  # noqa: E402
from pgpq.schema import Jsonb  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from deploy.local.stack import LocalStack  # noqa: E402
from projections import namespace  # noqa: E402
from projections.db import conninfo, engine  # noqa: E402
from projections.projectors import PROJECTORS, select  # noqa: E402
from projections.rebuild import rebuild  # noqa: E402
from projections.runner import ProjectionRunner  # noqa: E402
from projections.settings import DatabaseSettings  # noqa: E402
from schemas.serde import register_all  # noqa: E402
from schemas.settings import RegistrySettings  # noqa: E402
from streams import kafka  # noqa: E402
from streams.kafka.registry import registry_client  # noqa: E402
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics  # noqa: E402
from streams.runtime import tune_collector  # noqa: E402
from streams.settings import KafkaSettings  # noqa: E402

START = datetime(2024, 3, 1, tzinfo=UTC)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def raw_consume(settings: KafkaSettings, topics: list[str]) -> tuple[int, float]:
    """The reference reader: a plain read_committed consumer over the same partitions, values touched, not decoded."""
    consumer = kafka.consumer(settings, f"bench-raw-{uuid.uuid4().hex[:6]}")
    parts = []
    for topic in topics:
        meta = consumer.list_topics(settings.topic_prefix + topic, timeout=30).topics[settings.topic_prefix + topic]
        parts += [TopicPartition(settings.topic_prefix + topic, p, 0) for p in meta.partitions]
    ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    wanted = {k: v for k, v in ends.items() if v > 0}
    consumer.assign(parts)
    count, size = 0, 0
    started = time.perf_counter()
    while wanted:
        for msg in consumer.consume(5000, 0.5):
            if msg.error() is None:
                count += 1
                size += len(msg.value())
        now = consumer.position([TopicPartition(t, p) for t, p in wanted])
        wanted = {
            (tp.topic, tp.partition): ends[(tp.topic, tp.partition)]
            for tp in now
            if tp.offset < ends[(tp.topic, tp.partition)]
        }
    elapsed = time.perf_counter() - started
    consumer.close()
    return count, elapsed


_PL_OF: dict[str, Any] = {
    "text": pl.String,
    "character varying": pl.String,
    "integer": pl.Int32,
    "bigint": pl.Int64,
    "numeric": pl.Decimal(38, 8),
    "double precision": pl.Float64,
    "boolean": pl.Boolean,
    "timestamp with time zone": pl.Datetime("us", "UTC"),
    "jsonb": pl.String,
    "json": pl.String,
}


def raw_copy(info: str, schema: str, tables: list[str]) -> tuple[int, float]:
    """The reference writer: the rows a projection wrote, read back as Arrow, binary-COPYed (pgpq) into empty tables
    of the same shape; only the encoding and the COPY are timed."""
    rows_total, elapsed = 0, 0.0
    with psycopg.connect(info, autocommit=True) as conn:
        for table in tables:
            source = sql.Identifier(schema, table)
            found = conn.execute(sql.SQL("SELECT * FROM {}").format(source))
            names = [c.name for c in found.description or []]
            rows = found.fetchall()
            types: dict[str, str] = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s",
                    [schema, table],
                ).fetchall()
            )
            jsonb = {name for name, kind in types.items() if kind == "jsonb"}
            frame = pl.DataFrame(
                [[json.dumps(v) if isinstance(v, dict) else v for v in row] for row in rows],
                schema={name: _PL_OF[types[name]] for name in names},
                orient="row",
            )
            target = sql.Identifier(schema, f"copy_{table}")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(target, source))
            arrow = frame.to_arrow()
            started = time.perf_counter()
            encoders = {
                f.name: LargeStringEncoderBuilder.new_with_output(f, Jsonb())
                if f.name in jsonb
                else ArrowToPostgresBinaryEncoder.infer_encoder(f)
                for f in arrow.schema
            }
            encoder = ArrowToPostgresBinaryEncoder.new_with_encoders(arrow.schema, encoders)
            columns = sql.SQL(", ").join(map(sql.Identifier, names))
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, columns)) as copy,
            ):
                copy.write(encoder.write_header())
                for batch in arrow.to_batches():
                    copy.write(encoder.write_batch(batch))
                copy.write(encoder.finish())
            elapsed += time.perf_counter() - started
            rows_total += len(rows)
            conn.execute(sql.SQL("DROP TABLE {}").format(target))
    return rows_total, elapsed


def project_one(
    name: str, settings: KafkaSettings, client: Any, db: Engine, info: str, run: str
) -> tuple[int, float, int, float, float]:
    schema = f"bench_{run}_{name}"
    with db.begin() as conn:
        namespace.drop(conn, schema)
    namespace.upgrade(db, schema)
    runner = ProjectionRunner(select([name]), settings, client, info, schema)
    try:
        ends = runner.ends()
        started, cpu = time.perf_counter(), time.process_time()
        runner.run_to(ends)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        events = runner.stats.events
    finally:
        runner.close()
    rows, copy_s = raw_copy(info, schema, [t.name for t in PROJECTORS[name].tables])
    with db.begin() as conn:
        namespace.drop(conn, schema)
    return events, elapsed, rows, copy_s, cpu


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (a rebuild's runner processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    tune_collector()  # as every tradecore process does (streams.runtime)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="Events in the flow (about).")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--projections", default=",".join(PROJECTORS), help="Comma-separated projections to time.")
    parser.add_argument("--quick", action="store_true", help="20,000 events, one repeat.")
    parser.add_argument(
        "--rebuild-only", action="store_true", help="Time the full rebuild only (e.g. at --events 1000000)."
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.repeat = 20_000, 1
    endpoints = LocalStack().up(report=lambda _l: None)
    run = uuid.uuid4().hex[:6]
    settings = KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=f"bench-{run}.")
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), settings.topic_prefix)
    registry = RegistrySettings(url=endpoints.schema_registry_url)
    client = registry_client(registry)
    register_all(client, settings.topic_prefix)
    database = DatabaseSettings(url=endpoints.database_url)
    db, info = engine(database), conninfo(database)
    try:
        return measure(args, run, settings, registry, db, info)
    finally:
        say(f"deleting the run's topics ({settings.topic_prefix}*)")
        delete_namespace(admin, settings.topic_prefix)
        client.delete_subjects(client.subjects(settings.topic_prefix))
        db.dispose()


def measure(
    args: argparse.Namespace, run: str, settings: KafkaSettings, registry: RegistrySettings, db: Engine, info: str
) -> int:
    client = registry_client(registry)
    say(f"building and producing ~{args.events:,} events into {settings.topic_prefix}")
    produced = volume.produce(settings, volume.values(args.events, args.accounts, client, settings.topic_prefix))
    say(f"produced {produced:,} events")

    results: dict[str, Any] = {"run": run, "events": produced, "repeat": args.repeat, "projections": {}}
    topics = sorted({t for cls in PROJECTORS.values() for t in cls.topics})
    raw = [raw_consume(settings, topics) for _ in range(args.repeat)]
    raw_rate = median([n / s for n, s in raw])
    results["raw_consumer_events_per_s"] = raw_rate
    say(f"raw consumer: {raw_rate:,.0f} records/s")

    for name in [] if args.rebuild_only else args.projections.split(","):
        runs = [project_one(name, settings, client, db, info, run) for _ in range(args.repeat)]
        rate = median([r[0] / r[1] for r in runs])
        rows = runs[0][2]
        copy_rate = median([r[2] / r[3] for r in runs if r[3] > 0]) if rows else 0.0
        results["projections"][name] = {
            "events": runs[0][0],
            "events_per_s": rate,
            "rows": rows,
            "raw_copy_rows_per_s": copy_rate,
            "seconds": median([r[1] for r in runs]),
            "cpu_seconds": median([r[4] for r in runs]),
            "raw_copy_seconds": median([r[3] for r in runs]),
        }
        say(f"{name}: {runs[0][0]:,} events at {rate:,.0f}/s -> {rows:,} rows; raw COPY {copy_rate:,.0f} rows/s")

    rebuilds = []
    for _ in range(args.repeat):
        started, cpu = time.perf_counter(), _cpu()
        read = rebuild(select(None), settings, registry, db, info)
        rebuilds.append((read, time.perf_counter() - started, _cpu() - cpu))
        say(f"full rebuild: {read:,} records in {rebuilds[-1][1]:.1f} s ({rebuilds[-1][2]:.1f} s CPU)")
    results["rebuild"] = {
        "records": rebuilds[0][0],
        "seconds": median([s for _, s, _c in rebuilds]),
        "cpu_seconds": median([c for _, _s, c in rebuilds]),
        "events_per_s": median([n / s for n, s, _c in rebuilds]),
    }
    with db.begin() as conn:
        namespace.drop(conn, namespace.live_schema(settings.topic_prefix))

    print(f"\nread-side benchmark, run {run}: {produced:,} events, medians of {args.repeat}")
    # rate ratio: events/s projected ÷ rows/s raw COPY (the target's "0.3x raw COPY"); time ratio: raw COPY's seconds
    # ÷ the projection's, which is small wherever few rows come of many events.
    print(
        f"{'projection':<16}{'events':>10}{'events/s':>12}{'CPU s':>8}{'wall s':>8}{'rows':>10}{'raw COPY rows/s':>17}"
        f"{'rate ratio':>12}{'time ratio':>12}"
    )
    for name, r in results["projections"].items():
        ratio = r["raw_copy_seconds"] / r["seconds"] if r["seconds"] else 0.0
        rate_ratio = r["events_per_s"] / r["raw_copy_rows_per_s"] if r["raw_copy_rows_per_s"] else 0.0
        r["time_ratio_vs_raw_copy"], r["rate_ratio_vs_raw_copy"] = ratio, rate_ratio
        print(
            f"{name:<16}{r['events']:>10,}{r['events_per_s']:>12,.0f}{r['cpu_seconds']:>8.1f}{r['seconds']:>8.1f}"
            f"{r['rows']:>10,}"
            f"{r['raw_copy_rows_per_s']:>17,.0f}{rate_ratio:>12.3f}{ratio:>12.3f}"
        )
    rb = results["rebuild"]
    print(
        f"{'full rebuild':<16}{rb['records']:>10,}{rb['events_per_s']:>12,.0f}{rb['cpu_seconds']:>8.1f}"
        f"{rb['seconds']:>8.1f}"
    )
    print(f"{'raw consumer':<16}{'':>10}{raw_rate:>12,.0f}  records/s read, not decoded")
    print(json.dumps(results, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
