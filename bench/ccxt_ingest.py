"""Exchange-ingest benchmark: ticks/s that `tradecore ingest ccxt` gets from an exchange into the log, beside the
exchange side alone and a raw confluent-kafka producer sending the same bytes, all in one run.

    .venv/bin/python bench/ccxt_ingest.py                 # 3 repeats, table on stdout, JSON last
    .venv/bin/python bench/ccxt_ingest.py --repeat 5

The exchange is the tests' local Binance (``tests/support/fake_exchange.py``) replaying the recorded BTCUSDT
quotes and trades of 2021-01-08 over HTTP on 127.0.0.1, ``--page`` trades published per poll; ingest runs
with ``--interval 0`` until ``--events`` ticks are appended. Measured, each ``--repeat`` times (median, min-max):

* ``ingest``: the whole path — ccxt polls (HTTP, JSON, ccxt's parsing and rate limiter), the command gateway
  (validation, Postgres sequence counters), Avro encoding, the idempotent acks=all producer, every batch acked
  before the next poll; ticks/s from the first batch acked to the last (start-up left out).
* ``exchange only``: the same polls through ccxt, nothing appended: the ceiling the exchange side sets.
* ``raw producer``: ``streams.kafka.producer`` (idempotent, acks=all, lz4) producing the already encoded records of
  the same ticks, flushed: the ceiling Kafka sets.

Progress goes to stderr, the table to stdout, and the last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import db  # noqa: E402
from api.ingest import ingest_from_exchange  # noqa: E402
from commands import decide  # noqa: E402
from commands.models import IngestTicks  # noqa: E402
from domain.instruments import InstrumentRegistry  # noqa: E402
from projections.settings import DatabaseSettings  # noqa: E402
from schemas.serde import EventSerializer, register_all  # noqa: E402
from schemas.settings import RegistrySettings  # noqa: E402
from streams import kafka  # noqa: E402
from streams.exchanges import ExchangeSettings, connect_async, parse_options  # noqa: E402
from streams.ingest.exchange import ExchangeIngest, IngestStats  # noqa: E402
from streams.kafka.registry import registry_client  # noqa: E402
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics  # noqa: E402
from streams.settings import KafkaSettings  # noqa: E402
from tests.support.fake_exchange import FakeBinance, cli_options, serve  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def options(url: str) -> tuple[ExchangeSettings, dict[str, Any]]:
    pairs = cli_options(url)
    given = [pairs[i + 1] for i in range(len(pairs) - 1) if pairs[i] == "--exchange-option"]
    return ExchangeSettings(exchange_base_url=url), parse_options(given)


async def through_ingest(args: argparse.Namespace, kafka_settings: KafkaSettings, database: DatabaseSettings) -> float:
    with serve(FakeBinance(trades_per_poll=args.page)) as (_exchange, url):
        exchange, config = options(url)
        marks: list[tuple[float, int]] = []

        def progress(stats: IngestStats) -> None:
            if stats.events:
                marks.append((time.perf_counter(), stats.events))

        stats = await ingest_from_exchange(
            "binance",
            ["BTC/USDT"],
            options=config,
            instruments_file=ROOT / "domain" / "instruments.toml",
            interval_s=0,
            trades=True,
            max_events=args.events,
            stop=asyncio.Event(),
            on_progress=progress,
            exchange=exchange,
            kafka=kafka_settings,
            database=database,
        )
        assert stats.events == args.events, stats
        return steady(marks)


async def exchange_only(args: argparse.Namespace) -> tuple[float, list[IngestTicks]]:
    """The same polls through ccxt with nothing appended; the batches it made, for the raw producer."""
    batches: list[IngestTicks] = []
    with serve(FakeBinance(trades_per_poll=args.page)) as (_exchange, url):
        exchange, config = options(url)
        client = connect_async("binance", exchange, config)

        marks: list[tuple[float, int]] = []

        async def keep(batch: IngestTicks) -> int:
            batches.append(batch)
            marks.append((time.perf_counter(), sum(len(b.ticks) for b in batches)))
            return len(batch.ticks)

        try:
            poller = ExchangeIngest(
                client, ["BTC/USDT"], InstrumentRegistry.from_file(), keep, interval_s=0, max_events=args.events
            )
            stats = await poller.run(asyncio.Event())
        finally:
            await client.close()
    assert stats.events == args.events
    return steady(marks), batches


def steady(marks: list[tuple[float, int]]) -> float:
    """Ticks/s from the first batch appended to the last (start-up — markets, registry, database — left out)."""
    (first_at, first), (last_at, last) = marks[0], marks[-1]
    return (last - first) / (last_at - first_at)


def raw_producer(kafka_settings: KafkaSettings, records: list[tuple[bytes, bytes]], topic: str) -> float:
    producer = kafka.producer(kafka_settings)
    producer.produce(topic, key=records[0][0], value=records[0][1])  # connected, metadata known: as ingest's is
    assert producer.flush(60) == 0
    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.01)
    assert producer.flush(60) == 0
    return len(records) / (time.perf_counter() - started)


def encoded(batches: list[IngestTicks], serializer: EventSerializer) -> list[tuple[bytes, bytes]]:
    instruments = InstrumentRegistry.from_file()
    stamp = decide.Stamp(datetime.now(UTC), "bench")
    records = []
    sequence = 1
    for batch in batches:
        events = decide.ingest_ticks(batch, instruments, {"BTCUSDT": sequence}, stamp)
        sequence += len(events)
        records += [(serializer.key(e), serializer.serialize(e)) for e in events]
    return records


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=2000, help="ticks per run (the recording holds 2,001 trades)")
    parser.add_argument("--page", type=int, default=200, help="trades the exchange publishes per poll")
    args = parser.parse_args()

    prefix = f"bench-ccxt-{uuid.uuid4().hex[:8]}."  # the stack of .stack/env (`tradecore stack up`)
    kafka_settings = KafkaSettings(topic_prefix=prefix)
    database = DatabaseSettings()
    admin = kafka.admin(kafka_settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), kafka_settings.partitions), prefix)
    db.upgrade(database.url)
    registry = registry_client(RegistrySettings())
    register_all(registry, prefix)
    serializer = EventSerializer(registry, "ticks", topic_prefix=prefix)

    figures: dict[str, list[float]] = {"ingest": [], "exchange_only": [], "raw_producer": []}
    for run in range(1, args.repeat + 1):
        rate, batches = asyncio.run(exchange_only(args))
        figures["exchange_only"].append(rate)
        figures["raw_producer"].append(raw_producer(kafka_settings, encoded(batches, serializer), prefix + "ticks"))
        figures["ingest"].append(asyncio.run(through_ingest(args, kafka_settings, database)))
        log(f"run {run}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in figures.items()))

    result = {k: spread(v) for k, v in figures.items()}
    ratio = result["ingest"]["median"] / result["raw_producer"]["median"]
    print(f"\nticks/s, {args.events} ticks per run, {args.page} trades per poll, median of {args.repeat} (min-max)")
    print(f"{'path':<16}{'ticks/s':>12}{'min':>12}{'max':>12}")
    for name, s in result.items():
        print(f"{name:<16}{s['median']:>12,.0f}{s['min']:>12,.0f}{s['max']:>12,.0f}")
    versus_exchange = result["ingest"]["median"] / result["exchange_only"]["median"]
    print(f"ingest / raw producer: {ratio:.3f}; ingest / exchange only: {versus_exchange:.3f}")
    print(
        json.dumps(
            {
                "benchmark": "ccxt_ingest",
                "events": args.events,
                "page": args.page,
                "repeat": args.repeat,
                **result,
                "ratio_vs_raw": ratio,
                "ratio_vs_exchange_only": versus_exchange,
            }
        )
    )


if __name__ == "__main__":
    main()
