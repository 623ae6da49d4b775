"""Read-side benchmark (issue 5, item 6): events/s projected into Postgres per projection and for a full rebuild,
each beside a raw psycopg COPY of the same rows and a raw confluent-kafka consumer of the same records, in one run.

    .venv/bin/python bench/read_models.py                       # 200,000 events, 3 repeats
    .venv/bin/python bench/read_models.py --events 1000000 --rebuild-only --repeat 1   # the rebuild target
    .venv/bin/python bench/read_models.py --quick               # smoke test

What runs, in a fresh topic namespace ``bench-<run>.`` on the real stack:

* a synthetic but valid event flow, produced once: per order an OrderPlaced, an OrderAccepted, an OrderFilled and
  a PositionChanged (``--accounts`` accounts), four TickIngested per order (BTCUSDT, one every 250 ms of event
  time), a SignalGenerated every 50 orders, each account's RiskLimitsSet;
* each projection alone (``projections.runner.ProjectionRunner`` over its topics, into a fresh schema, from offset
  0 to the end): events read per second of wall time;
* the full rebuild (``projections.rebuild.rebuild``: every projection into the shadow schema, then the swap);
* references, same run: a raw ``confluent_kafka.Consumer`` (read_committed) reading the same records, and a raw
  psycopg ``COPY`` of the very rows each projection wrote, into an empty table of the same shape.

Medians over ``--repeat`` runs. Progress on stderr, a table on stdout, one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from confluent_kafka import TopicPartition  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from deploy.local.stack import LocalStack  # noqa: E402
from projections import namespace  # noqa: E402
from projections.db import conninfo, engine  # noqa: E402
from projections.projectors import PROJECTORS, select  # noqa: E402
from projections.rebuild import rebuild  # noqa: E402
from projections.runner import ProjectionRunner  # noqa: E402
from projections.settings import DatabaseSettings  # noqa: E402
from schemas.events import Event  # noqa: E402
from schemas.serde import EventSerializer, register_all  # noqa: E402
from schemas.settings import RegistrySettings  # noqa: E402
from streams import kafka  # noqa: E402
from streams.host.processor import event_time_ms  # noqa: E402
from streams.kafka.registry import registry_client  # noqa: E402
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics  # noqa: E402
from streams.settings import KafkaSettings  # noqa: E402
from tests.support import events as build  # noqa: E402

START = datetime(2024, 3, 1, tzinfo=UTC)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def flow(orders: int, accounts: int) -> list[Event]:
    """The synthetic event flow: valid events of every topic a projection reads."""
    out: list[Event] = []
    sequences: dict[str, int] = {}

    def env(cls: type[Event], aggregate: str, at: datetime, cause: str | None = None) -> Any:
        sequences[aggregate] = sequences.get(aggregate, 0) + 1
        return build.envelope(
            cls,
            event_id=uuid.uuid4(),
            occurred_at=at,
            recorded_at=at,
            aggregate_id=aggregate,
            sequence=sequences[aggregate],
            correlation_id=f"c-{aggregate}",
            causation_id=cause,
        )

    for a in range(accounts):
        account = f"ACC-{a}"
        out.append(
            build.risk_limits_set(envelope=env(type(build.risk_limits_set()), account, START), account_id=account)
        )
    price = Decimal("40000.00000000")
    position: dict[str, Decimal] = {}
    for i in range(orders):
        at = START + timedelta(milliseconds=1000 * i)
        account, order_id = f"ACC-{i % accounts}", f"ord-{i}"
        for k in range(4):
            price += Decimal("0.50") if (i + k) % 3 else Decimal("-0.75")
            tick_at = at + timedelta(milliseconds=250 * k)
            out.append(
                build.tick_ingested(
                    envelope=env(type(build.tick_ingested()), "BTCUSDT", tick_at),
                    bid=price - Decimal("0.5"),
                    ask=price + Decimal("0.5"),
                    exchange_ts=tick_at,
                )
            )
        quantity = Decimal("0.01000000")
        placed = build.order_placed(
            envelope=env(type(build.order_placed()), order_id, at),
            order_id=order_id,
            account_id=account,
            client_order_id=f"cl-{i}",
            quantity=quantity,
        )
        accepted = build.order_accepted(
            envelope=env(type(build.order_accepted()), order_id, at, str(placed.envelope.event_id)),
            order_id=order_id,
            account_id=account,
            client_order_id=f"cl-{i}",
            quantity=quantity,
        )
        filled = build.order_filled(
            envelope=env(type(build.order_filled()), order_id, at, str(accepted.envelope.event_id)),
            order_id=order_id,
            account_id=account,
            fill_id=f"fill-{i}",
            fill_quantity=quantity,
            cumulative_quantity=quantity,
            leaves_quantity=Decimal("0E-8"),
            fill_price=price,
            is_final=True,
        )
        position[account] = position.get(account, Decimal(0)) + quantity
        changed = build.position_changed(
            envelope=env(type(build.position_changed()), account, at, str(filled.envelope.event_id)),
            account_id=account,
            quantity=position[account],
            average_price=price,
            fill_id=f"fill-{i}",
        )
        out += [placed, accepted, filled, changed]
        if i % 50 == 0:
            out.append(build.signal_generated(envelope=env(type(build.signal_generated()), "BTCUSDT", at)))
    return out


def produce(settings: KafkaSettings, client: Any, log: list[Event]) -> None:
    serializers: dict[str, EventSerializer] = {}
    producer = kafka.producer(settings)
    for event in log:
        route = event.route().topic
        ser = serializers.get(route) or serializers.setdefault(
            route, EventSerializer(client, route, topic_prefix=settings.topic_prefix)
        )
        while True:
            try:
                producer.produce(
                    ser.topic, key=ser.key(event), value=ser.serialize(event), timestamp=event_time_ms(event)
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0


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


def raw_copy(info: str, schema: str, tables: list[str]) -> tuple[int, float]:
    """The reference writer: the rows a projection wrote, COPYed with psycopg into empty tables of the same shape."""
    rows_total, elapsed = 0, 0.0
    with psycopg.connect(info, autocommit=True) as conn:
        for table in tables:
            source = sql.Identifier(schema, table)
            rows = [
                tuple(Jsonb(v) if isinstance(v, dict) else v for v in row)
                for row in conn.execute(sql.SQL("SELECT * FROM {}").format(source)).fetchall()
            ]
            target = sql.Identifier(schema, f"copy_{table}")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(target, source))
            started = time.perf_counter()
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            elapsed += time.perf_counter() - started
            rows_total += len(rows)
            conn.execute(sql.SQL("DROP TABLE {}").format(target))
    return rows_total, elapsed


def project_one(
    name: str, settings: KafkaSettings, client: Any, db: Engine, info: str, run: str
) -> tuple[int, float, int, float]:
    schema = f"bench_{run}_{name}"
    with db.begin() as conn:
        namespace.drop(conn, schema)
    namespace.upgrade(db, schema)
    runner = ProjectionRunner(select([name]), settings, client, info, schema)
    try:
        ends = runner.ends()
        started = time.perf_counter()
        runner.run_to(ends)
        elapsed = time.perf_counter() - started
        events = runner.stats.events
    finally:
        runner.close()
    rows, copy_s = raw_copy(info, schema, [t.name for t in PROJECTORS[name].tables])
    with db.begin() as conn:
        namespace.drop(conn, schema)
    return events, elapsed, rows, copy_s


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="Events in the flow (about).")
    parser.add_argument("--accounts", type=int, default=200)
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
    log = flow(max(1, args.events // 9), args.accounts)
    produce(settings, client, log)
    say(f"produced {len(log):,} events")

    results: dict[str, Any] = {"run": run, "events": len(log), "repeat": args.repeat, "projections": {}}
    topics = sorted({t for cls in PROJECTORS.values() for t in cls.topics})
    raw = [raw_consume(settings, topics) for _ in range(args.repeat)]
    raw_rate = median([n / s for n, s in raw])
    results["raw_consumer_events_per_s"] = raw_rate
    say(f"raw consumer: {raw_rate:,.0f} records/s")

    for name in [] if args.rebuild_only else args.projections.split(","):
        runs = [project_one(name, settings, client, db, info, run) for _ in range(args.repeat)]
        rate = median([e / s for e, _s, _r, _c in [(r[0], r[1], r[2], r[3]) for r in runs] for s in [_s]])
        rows = runs[0][2]
        copy_rate = median([r[2] / r[3] for r in runs if r[3] > 0]) if rows else 0.0
        results["projections"][name] = {
            "events": runs[0][0],
            "events_per_s": rate,
            "rows": rows,
            "raw_copy_rows_per_s": copy_rate,
            "seconds": median([r[1] for r in runs]),
            "raw_copy_seconds": median([r[3] for r in runs]),
        }
        say(f"{name}: {runs[0][0]:,} events at {rate:,.0f}/s -> {rows:,} rows; raw COPY {copy_rate:,.0f} rows/s")

    rebuilds = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        read = rebuild(select(None), settings, registry, db, info)
        rebuilds.append((read, time.perf_counter() - started))
        say(f"full rebuild: {read:,} records in {rebuilds[-1][1]:.1f} s")
    results["rebuild"] = {
        "records": rebuilds[0][0],
        "seconds": median([s for _, s in rebuilds]),
        "events_per_s": median([n / s for n, s in rebuilds]),
    }
    with db.begin() as conn:
        namespace.drop(conn, namespace.live_schema(settings.topic_prefix))

    print(f"\nread-side benchmark, run {run}: {len(log):,} events, medians of {args.repeat}")
    # rate ratio: events/s projected ÷ rows/s raw COPY (the target's "0.3x raw COPY"); time ratio: raw COPY's seconds
    # ÷ the projection's, which is small wherever few rows come of many events.
    print(
        f"{'projection':<16}{'events':>10}{'events/s':>12}{'rows':>10}{'raw COPY rows/s':>17}"
        f"{'rate ratio':>12}{'time ratio':>12}"
    )
    for name, r in results["projections"].items():
        ratio = r["raw_copy_seconds"] / r["seconds"] if r["seconds"] else 0.0
        rate_ratio = r["events_per_s"] / r["raw_copy_rows_per_s"] if r["raw_copy_rows_per_s"] else 0.0
        r["time_ratio_vs_raw_copy"], r["rate_ratio_vs_raw_copy"] = ratio, rate_ratio
        print(
            f"{name:<16}{r['events']:>10,}{r['events_per_s']:>12,.0f}{r['rows']:>10,}"
            f"{r['raw_copy_rows_per_s']:>17,.0f}{rate_ratio:>12.3f}{ratio:>12.3f}"
        )
    rb = results["rebuild"]
    print(f"{'full rebuild':<16}{rb['records']:>10,}{rb['events_per_s']:>12,.0f}  in {rb['seconds']:.1f} s")
    print(f"{'raw consumer':<16}{'':>10}{raw_rate:>12,.0f}  records/s read, not decoded")
    print(json.dumps(results, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
