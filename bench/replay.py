"""Replay benchmark (issue 5): how fast `tradecore replay` reads a topic back, and how long a point-in-time state
takes — each beside a raw confluent-kafka consumer reading the same records, in the same run.

    .venv/bin/python bench/replay.py                       # 100,000 fills, 3 repeats (≈ 3 min)
    .venv/bin/python bench/replay.py --records 20000 --repeat 2

Measured, each ``--repeat`` times (median reported):

* replay: ``streams.replay.topic.replay`` over a whole ``executions`` topic of ``--records`` OrderFilled events
  (6 partitions, written in transactions as the processors write), each fetched batch decoded at once
  (``schemas.batch``), merged by event time as columns, into a Parquet file — what
  ``tradecore replay --topic executions --out F.parquet`` does, without the process start; wall and CPU time;
* reference 1: a raw ``confluent_kafka.Consumer`` (read_committed) fetching the same records, bytes only;
* reference 2: the same consumer decoding each value with confluent-kafka's ``AvroDeserializer`` (fastavro);
* point-in-time: ``AccountHistory.state`` for one account with ``--account-orders`` orders (placed, accepted, filled
  — three events each, on the account's partitions), as of the end and as of the middle of its history;
* reference: a raw consumer reading those same partitions from their start to their end, bytes only.

Progress goes to stderr, the table to stdout, and the last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.events import Event, Liquidity, OrderAccepted, OrderFilled, OrderPlaced, OrderType, Side, TimeInForce
from schemas.events import new_envelope as envelope_of
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.replay.keys import partition_for
from streams.replay.output import ParquetFile
from streams.replay.pointintime import AccountHistory
from streams.replay.reader import TopicReader
from streams.replay.rows import RowFilter, columns
from streams.replay.topic import ReplaySummary, replay
from streams.runtime import tune_collector
from streams.settings import KafkaSettings
from tests.support import confluent

START = datetime(2021, 1, 8, tzinfo=UTC)
ACCOUNT = "ACC-BENCH"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stamp(cls: type[Event], n: int, aggregate: str) -> Any:
    at = START + timedelta(milliseconds=10 * n)
    return envelope_of(
        cls,
        event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{cls.__name__}-{aggregate}-{n}"),
        occurred_at=at,
        recorded_at=at,
        correlation_id=f"c-{n}",
        aggregate_id=aggregate,
        sequence=1,
    )


def fill(n: int, account: str, instrument: str) -> OrderFilled:
    return OrderFilled(
        envelope=stamp(OrderFilled, n, f"o-{account}-{n}"),
        order_id=f"o-{account}-{n}",
        account_id=account,
        instrument=instrument,
        side=Side.BUY if n % 2 else Side.SELL,
        fill_id=f"f-{n}",
        fill_price=Decimal("40000.12345678") + n % 1000,
        fill_quantity=Decimal("0.001"),
        cumulative_quantity=Decimal("0.001"),
        leaves_quantity=Decimal("0"),
        liquidity=Liquidity.TAKER,
        fee=Decimal("0.02"),
        fee_currency="USDT",
        is_final=True,
    )


def write(settings: KafkaSettings, events: list[tuple[str, Event]], registry: Any, per_txn: int = 2000) -> None:
    """Events to their topics (name, event), in transactions of ``per_txn``, as a processor writes."""
    serializers: dict[str, EventSerializer] = {}
    producer = kafka.producer(settings, **{"transactional.id": f"bench-{uuid.uuid4()}"})
    producer.init_transactions(30)
    for start in range(0, len(events), per_txn):
        producer.begin_transaction()
        for topic, event in events[start : start + per_txn]:
            route = event.route().topic
            ser = serializers.setdefault(route, EventSerializer(registry, route, topic_prefix=settings.topic_prefix))
            key = event.key if topic != "executions.by-account" else getattr(event, "account_id")  # noqa: B009
            value = ser.serialize(event)
            while True:
                try:
                    producer.produce(
                        settings.topic_prefix + topic, key=key.encode(), value=value, timestamp=event_time_ms(event)
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.commit_transaction(60)


def raw_read(settings: KafkaSettings, topic: str, partitions: list[int], decode: Callable[[bytes], Any] | None) -> int:
    """Every committed record of ``partitions`` with a plain consumer; decoded with ``decode`` if given."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"bench-raw-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    name = settings.topic_prefix + topic
    ends = {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)[1] for p in partitions}
    consumer.assign([TopicPartition(name, p, 0) for p in partitions if ends[p] > 0])
    count, pending = 0, {p for p in partitions if ends[p] > 0}
    while pending:
        for msg in consumer.consume(1000, 0.2):
            if msg.error() is None:
                count += 1
                if decode is not None:
                    decode(msg.value())
        for tp in consumer.position([TopicPartition(name, p) for p in pending]):
            if tp.offset >= ends[tp.partition]:
                pending.discard(tp.partition)
    consumer.close()
    return count


CPU: dict[str, float] = {}  # label -> median CPU seconds of this process (the broker's are not counted)


def timed(run: Callable[[], int], repeat: int, label: str) -> tuple[float, int]:
    times, cpus, count = [], [], 0
    for i in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        count = run()
        times.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
        say(f"  {label} #{i + 1}: {count:,} records in {times[-1]:.2f} s ({cpus[-1]:.2f} s CPU)")
    CPU[label] = statistics.median(cpus)
    return statistics.median(times), count


def main() -> None:
    tune_collector()  # as every tradecore process does (streams.runtime)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="OrderFilled events on the replayed topic")
    parser.add_argument("--account-orders", type=int, default=5_000, help="orders in the point-in-time account")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    settings = KafkaSettings(topic_prefix=f"bench-replay-{uuid.uuid4().hex[:8]}.")
    registry = registry_client(RegistrySettings())
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), settings.topic_prefix)
    register_all(registry, settings.topic_prefix)
    say(f"namespace {settings.topic_prefix}: writing {args.records:,} fills and an account of {args.account_orders:,}")
    instruments = ["BTCUSDT", "ETHUSDT", "XBTUSD", "EURUSD", "USDJPY", "SOLUSDT"]
    write(
        settings, [("executions", fill(n, f"ACC-{n % 50}", instruments[n % 6])) for n in range(args.records)], registry
    )
    history: list[tuple[str, Event]] = []
    for n in range(args.account_orders):
        order_id = f"o-{ACCOUNT}-{n}"
        common: dict[str, Any] = {
            "order_id": order_id,
            "account_id": ACCOUNT,
            "client_order_id": f"c-{n}",
            "instrument": "BTCUSDT",
        }
        order: dict[str, Any] = {
            **common,
            "side": Side.BUY,
            "order_type": OrderType.LIMIT,
            "time_in_force": TimeInForce.GTC,
        }
        order |= {"quantity": Decimal("0.001"), "limit_price": Decimal("40000")}
        history.append(("orders", OrderPlaced(envelope=stamp(OrderPlaced, n, ACCOUNT), **order)))
        history.append(("orders.checked", OrderAccepted(envelope=stamp(OrderAccepted, n, order_id), **order)))
        history.append(("executions.by-account", fill(n, ACCOUNT, "BTCUSDT")))
    write(settings, history, registry)

    decoder = confluent.deserializer(RegistrySettings().url)  # subjects named: no association look-up to stall on
    context = SerializationContext(settings.topic_prefix + "executions", MessageField.VALUE)
    schema = columns("executions")
    everything = list(range(settings.partitions))

    def ours() -> int:
        with TopicReader(settings, registry, "executions") as reader, tempfile.TemporaryDirectory() as tmp:
            summary = ReplaySummary()
            sink = ParquetFile(Path(tmp) / "out.parquet", schema)
            replay(reader, reader.ranges(), RowFilter([], schema), sink, summary)
            sink.close()
            return summary.written

    say("replay")
    replay_s, replayed = timed(ours, args.repeat, "tradecore replay → parquet")
    raw_s, _ = timed(lambda: raw_read(settings, "executions", everything, None), args.repeat, "raw consumer")
    avro_s, _ = timed(
        lambda: raw_read(settings, "executions", everything, lambda v: decoder(v, context)),
        args.repeat,
        "raw consumer + AvroDeserializer",
    )

    say("point-in-time")
    account_history = AccountHistory(settings, registry)
    end = START + timedelta(milliseconds=10 * args.account_orders)
    middle = START + timedelta(milliseconds=5 * args.account_orders)

    def state_at(at: datetime) -> Callable[[], int]:
        return lambda: account_history.state(ACCOUNT, at).records_read

    state_end_s, state_records = timed(state_at(end), args.repeat, "state as of the end")
    state_mid_s, _ = timed(state_at(middle), args.repeat, "state as of the middle")
    p = partition_for(ACCOUNT, settings.partitions)
    p_checked = partition_for("BTCUSDT", settings.partitions)

    def raw_account() -> int:
        return sum(
            raw_read(settings, topic, [partition], None)
            for topic, partition in (("orders", p), ("orders.checked", p_checked), ("executions.by-account", p))
        )

    raw_state_s, _ = timed(raw_account, args.repeat, "raw consumer, same partitions")

    rows = [
        ("replay executions → Parquet, records/s", replayed / replay_s, replayed / raw_s, replayed / avro_s),
        ("point-in-time state (end), s", state_end_s, raw_state_s, None),
        ("point-in-time state (middle), s", state_mid_s, raw_state_s, None),
    ]
    print(f"CPU s (this process, medians): {', '.join(f'{k} {v:.2f}' for k, v in CPU.items())}")
    print(f"{'measure':<44} {'tradecore':>14} {'raw bytes':>14} {'raw + Avro':>14} {'ratio':>8}")
    for label, value, raw, avro in rows:
        ratio = value / raw if "records/s" in label else raw / value
        avro_text = f"{avro:>14,.0f}" if avro is not None else f"{'—':>14}"
        print(f"{label:<44} {value:>14,.2f} {raw:>14,.2f} {avro_text} {ratio:>8.3f}")
    print(
        json.dumps(
            {
                "benchmark": "replay",
                "namespace": settings.topic_prefix,
                "records": replayed,
                "repeat": args.repeat,
                "replay_records_per_s": round(replayed / replay_s),
                "replay_records_per_cpu_s": round(replayed / CPU["tradecore replay → parquet"]),
                "cpu_s": CPU,
                "raw_records_per_s": round(replayed / raw_s),
                "raw_avro_records_per_s": round(replayed / avro_s),
                "replay_vs_raw": round(raw_s / replay_s, 4),
                "replay_vs_raw_avro": round(avro_s / replay_s, 4),
                "account_records": state_records,
                "state_end_s": round(state_end_s, 4),
                "state_middle_s": round(state_mid_s, 4),
                "raw_account_read_s": round(raw_state_s, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
