"""Order-entry benchmark (issue 3, item 5): what the command API accepts, how fast it answers, and how fast ticks
get into the log — each beside a raw confluent-kafka producer sending the same bytes, all in one run.

    .venv/bin/python bench/order_entry.py                  # the full run (≈ 20 min), table on stdout, JSON last
    .venv/bin/python bench/order_entry.py --workers 1,2    # measure both worker counts
    .venv/bin/python bench/order_entry.py --quick          # smoke test (≈ 3 min)

Measured, each ``--repeat`` times (median and min-max reported):

* ``POST /v1/orders`` against a real ``tradecore api`` server process (uvicorn, ``--workers``), the real stack
  (Kafka, Postgres, schema registry), a fresh topic namespace ``bench-<run>.``, a real bearer token:
  - max accepted orders/s, closed loop (``--concurrency`` requests always in flight);
  - latency p50/p99/p99.9 at fixed offered loads (``--loads``), open loop at a constant arrival rate, with the
    achieved rate and the errors.
  Every request is a distinct valid order (unique client_order_id, ``--accounts`` accounts, BTCUSDT LIMIT GTC).
* ticks/s through ``POST /v1/ticks`` in batches (``--tick-batches``), real Binance quotes cycled;
* ticks/s through ``streams.eventlog.KafkaEventLog.append`` directly, events from ``commands.decide.ingest_ticks``;
* the reference the issue 16 targets name: a bare FastAPI endpoint parsing the same bodies with the same pydantic
  model (``bench/bare_orders.py``, uvicorn with ``tradecore api``'s settings) under the same closed loop — server
  CPU per request beside the API's per accepted order, and their ratio;
* encoding one group commit's ``OrderPlaced`` record by record against the batch encoder (same bytes), per event;
* the reference: a raw ``confluent_kafka.Producer`` with the project's producer config (``streams.kafka.producer``:
  idempotent, acks=all, linger 5 ms, lz4) producing the pre-serialized values and keys of the same events to topics
  of the same layout — its max rate for OrderPlaced and TickIngested records, and its ack latency at the same loads.

The load generator is vegeta (Go, constant-rate open-loop attacks, per-request bodies from a targets file), built
by ``bench/install_vegeta.sh``. Every measurement records the CPU each component used (API server, load generator,
Kafka, Postgres, registry, the rest of the machine): on 2 cores they all compete.

Progress goes to stderr, the table to stdout, and the last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import secrets
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
from confluent_kafka import Producer

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import commit_steps
from bench.bare_orders import BareServer
from bench.common import (
    ROOT,
    ApiServer,
    BenchError,
    BenchRun,
    CpuWindow,
    Guard,
    LogCount,
    Vegeta,
    add_run_options,
    fmt,
    fmt_ms,
    fmt_spread,
    install_vegeta,
    log,
    machine,
    percentiles_ms,
    post_targets,
    prepare_namespace,
    profiled,
    ratio,
    report,
    spread,
    target_lines,
)
from streams.errors import MarketDataMissing
from streams.ingest.recorded import BINANCE_QUOTES, market_file

# The issues' targets (issue 3; issue 16 item 3 for the server CPU per order, its ratio to the bare endpoint and the
# p99 at 1,000 orders/s, which it sets at 20 ms).
TARGET_ORDERS_PER_S = 5_000
TARGET_P99_MS_AT_1000 = 20.0
TARGET_SERVER_CPU_MS = 0.4
TARGET_CPU_VS_BARE = 1.5
TARGET_TICKS_PER_S = 200_000
TARGET_TICKS_VS_RAW = 0.5

TRADER, FEED = "bench-trader", "bench-feed"
INSTRUMENT = "BTCUSDT"
DEFAULT_WORKERS = 2  # measured: see docs/PERFORMANCE.md
MAX_CLOSED_LOOP_RATE = (
    10_000  # distinct orders prepared per second of a closed-loop attack; a server beyond it is flagged
)


# --- market data and request bodies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    at: datetime
    bid_cents: int
    ask_cents: int
    bid_size: str
    ask_size: str


def _size(value: float) -> str:
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text or "0"


def load_quotes(path: Path | None) -> list[Quote]:
    """The recorded BTCUSDT quotes (``path``, else the market-data folder's), as exact cents and size strings;
    crossed quotes are left out."""
    try:
        path = path or market_file(BINANCE_QUOTES)
    except MarketDataMissing as err:
        raise BenchError(str(err)) from err
    if not path.exists():
        raise BenchError(f"the market data file {path} is missing → pass --quotes FILE")
    frame = pl.read_parquet(path).sort("timestamp")
    quotes = []
    for row in frame.iter_rows(named=True):
        bid, ask = round(row["bid"] * 100), round(row["ask"] * 100)
        if 0 < bid <= ask and row["bid_size"] >= 0 and row["ask_size"] >= 0:
            quotes.append(Quote(row["timestamp"], bid, ask, _size(row["bid_size"]), _size(row["ask_size"])))
    if not quotes:
        raise BenchError(f"no usable quotes in {path}")
    return quotes


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Orders:
    """Distinct valid PlaceOrder bodies: unique client_order_id, accounts round-robin, prices from real quotes."""

    def __init__(self, run_tag: str, accounts: list[str], quotes: list[Quote]) -> None:
        self._tag = run_tag
        self._accounts = accounts
        self._quotes = quotes
        self.issued = 0

    def body(self, n: int) -> bytes:
        quote = self._quotes[n % len(self._quotes)]
        buy = n % 2 == 0
        # Resting limit orders a few ticks away from the touch; quantity in whole lots (0.000001 BTC).
        price = quote.bid_cents - n % 97 if buy else quote.ask_cents + n % 97
        quantity = 1_000 + n % 4_000
        return (
            f'{{"account_id":"{self._accounts[n % len(self._accounts)]}","client_order_id":"{self._tag}-{n}",'
            f'"instrument":"{INSTRUMENT}","side":"{"BUY" if buy else "SELL"}","order_type":"LIMIT",'
            f'"time_in_force":"GTC","quantity":"0.{quantity:06d}","limit_price":"{_price(price)}"}}'
        ).encode()

    def take(self, count: int) -> Iterator[bytes]:
        """``count`` bodies never handed out before in this run."""
        first = self.issued
        self.issued += count
        return (self.body(n) for n in range(first, first + count))


class Ticks:
    """Tick JSON fragments from the recorded quotes; each pass over the file is shifted by the file's span so every
    fragment in the pool is a distinct tick, and the pool is cycled."""

    def __init__(self, quotes: list[Quote], pool: int = 50_000) -> None:
        span = quotes[-1].at - quotes[0].at + timedelta(seconds=1)
        fragments = []
        for i in range(pool):
            q = quotes[i % len(quotes)]
            at = (q.at + span * (i // len(quotes))).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            fragments.append(
                f'{{"instrument":"{INSTRUMENT}","bid":"{_price(q.bid_cents)}","ask":"{_price(q.ask_cents)}",'
                f'"bid_size":"{q.bid_size}","ask_size":"{q.ask_size}","exchange_ts":"{at}"}}'.encode()
            )
        self._fragments = fragments
        self._next = 0

    def body(self, size: int) -> bytes:
        """The next ``size`` ticks of the cycle as an IngestTicks body."""
        n = len(self._fragments)
        start = self._next % n
        self._next += size
        chosen = self._fragments[start : start + size]
        while len(chosen) < size:
            chosen += self._fragments[: size - len(chosen)]
        return b'{"source":"bench","ticks":[' + b",".join(chosen) + b"]}"


# --- Kafka helpers ------------------------------------------------------------------------------------------------


def raw_max_rate(producer: Producer, topic: str, records: list[tuple[bytes, bytes]], duration: float) -> dict[str, Any]:
    """The raw producer flat out: produce the records (cycled) for ``duration`` seconds, then wait for every ack."""
    outcome = {"delivered": 0, "failed": 0}

    def report(err: Any, _msg: Any) -> None:
        outcome["failed" if err is not None else "delivered"] += 1

    produce, poll = producer.produce, producer.poll
    sent, n = 0, len(records)
    start = time.perf_counter()
    deadline = start + duration
    while time.perf_counter() < deadline:
        for i in range(sent, sent + 2_000):
            value, key = records[i % n]
            while True:
                try:
                    produce(topic, value, key, on_delivery=report)
                    break
                except BufferError:
                    poll(0.001)
        sent += 2_000
        poll(0)
    left = producer.flush(120)
    elapsed = time.perf_counter() - start
    return {
        "sent": sent,
        "acked": outcome["delivered"],
        "failed": outcome["failed"] + left,
        "seconds": elapsed,
        "per_s": outcome["delivered"] / elapsed,
    }


def raw_paced(
    producer: Producer, topic: str, records: list[tuple[bytes, bytes]], rate: int, duration: float
) -> dict[str, Any]:
    """The raw producer at a constant rate: each record's latency from produce() to its delivery report (acks=all)."""
    count = int(rate * duration)
    sent_at = np.zeros(count)
    latency = np.full(count, np.nan)
    failed = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            producer.poll(0.005)

    poller = threading.Thread(target=serve, daemon=True)
    poller.start()
    perf = time.perf_counter
    n = len(records)
    start = perf()
    i = 0
    while i < count:
        due = min(count, int((perf() - start) * rate) + 1)
        while i < due:
            value, key = records[i % n]

            def report(err: Any, _msg: Any, i: int = i) -> None:
                if err is None:
                    latency[i] = perf() - sent_at[i]
                else:
                    failed[0] += 1

            sent_at[i] = perf()
            try:
                producer.produce(topic, value, key, on_delivery=report)
            except BufferError:
                failed[0] += 1
            i += 1
        time.sleep(0.0002)
    sent_s = perf() - start
    producer.flush(60)
    stop.set()
    poller.join()
    ok = latency[~np.isnan(latency)]
    return {"sent": count, "achieved_per_s": count / sent_s, "errors": failed[0], **percentiles_ms(ok)}


# --- ticks over HTTP and through the event log ---------------------------------------------------------------------


async def http_ticks(
    url: str, token: str, ticks: Ticks, batch: int, duration: float, concurrency: int
) -> dict[str, Any]:
    """POST /v1/ticks batches, ``concurrency`` in flight, for ``duration`` seconds; ticks the API acknowledged."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    accepted, latencies = 0, []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal accepted
            while time.perf_counter() < deadline:
                body = ticks.body(batch)
                t = time.perf_counter()
                answer = await client.post("/v1/ticks", content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                if answer.status_code == 202:
                    accepted += int(answer.json()["accepted"])
                else:
                    errors[f"{answer.status_code} {answer.text[:80]}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = percentiles_ms(np.array(latencies))
    return {
        "batches": len(latencies),
        "accepted": accepted,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "seconds": elapsed,
        "per_s": accepted / elapsed,
        "batch_p50_ms": lat["p50_ms"],
        "batch_p99_ms": lat["p99_ms"],
    }


@dataclass
class EventPools:
    """Events built the way the API builds them, and their serialized bytes for the raw producer."""

    tick_batches: dict[int, list[Sequence[Any]]]  # batch size -> batches of TickIngested
    tick_records: list[tuple[bytes, bytes]]  # (value, key) of TickIngested
    order_records: list[tuple[bytes, bytes]]  # (value, key) of OrderPlaced
    build_ticks_per_s: float
    encode_ticks_per_s: float  # EventSerializer.serialize alone (codec + AvroSerializer + fastavro), one core
    tick_bytes: float
    order_bytes: float


def build_pools(ticks: Ticks, orders: Orders, batch_sizes: list[int], pool: int) -> EventPools:
    from commands import decide
    from commands.decide import Stamp
    from commands.models import IngestTicks, PlaceOrder
    from commands.validation import validate_place, validate_ticks
    from domain.instruments import InstrumentRegistry
    from schemas.serde import EventSerializer
    from schemas.settings import RegistrySettings
    from streams.kafka.registry import registry_client
    from streams.settings import KafkaSettings

    instruments = InstrumentRegistry.from_file()
    client = registry_client(RegistrySettings())
    prefix = KafkaSettings().topic_prefix
    tick_serializer = EventSerializer(client, "ticks", topic_prefix=prefix)
    order_serializer = EventSerializer(client, "orders", topic_prefix=prefix)
    stamp = Stamp(at=datetime.now(UTC), correlation_id="bench")

    tick_batches: dict[int, list[Sequence[Any]]] = {}
    sequence, built, build_s = 1, 0, 0.0
    for size in batch_sizes:
        tick_batches[size] = []
        for _ in range(max(1, pool // size)):
            body = ticks.body(size)
            t = time.perf_counter()
            command = IngestTicks.model_validate_json(body)
            validate_ticks(command, instruments)
            events = decide.ingest_ticks(command, instruments, {INSTRUMENT: sequence}, stamp)
            build_s += time.perf_counter() - t
            built += len(events)
            sequence += len(events)
            tick_batches[size].append(events)
    t = time.perf_counter()
    tick_records = [r for batch in tick_batches[max(batch_sizes)] for r in _serialized(tick_serializer, batch)]
    encode_ticks_per_s = len(tick_records) / (time.perf_counter() - t)
    order_records = []
    for body in orders.take(min(pool, 50_000)):
        placing = PlaceOrder.model_validate_json(body)
        validate_place(placing, instruments)
        order_records.append(_serialized(order_serializer, [decide.place_order(placing, stamp)])[0])
    return EventPools(
        tick_batches=tick_batches,
        tick_records=tick_records,
        order_records=order_records,
        build_ticks_per_s=built / build_s,
        encode_ticks_per_s=encode_ticks_per_s,
        tick_bytes=statistics.mean(len(v) for v, _ in tick_records),
        order_bytes=statistics.mean(len(v) for v, _ in order_records),
    )


def _serialized(serializer: Any, events: Sequence[Any]) -> list[tuple[bytes, bytes]]:
    return [(serializer.serialize(e), serializer.key(e)) for e in events]


GROUP_COMMIT_SIZES = (1, 8, 32, 128)


def group_commit_encoding(orders: Orders, repeat: int) -> dict[str, dict[str, float]]:
    """Encoding the OrderPlaced events of one group commit, µs of CPU per event, one core, at batch sizes the route
    sees: record by record (``EventSerializer``, what the event log does) against the batch encoder
    (``schemas.batch``) over a frame of the same events, the frame's building included; median of ``repeat``."""
    from commands import decide
    from commands.decide import Stamp
    from commands.models import PlaceOrder
    from schemas import avsc, codec
    from schemas.batch import BatchEncoder, nodes
    from schemas.events import OrderPlaced
    from schemas.serde import EventSerializer
    from schemas.settings import RegistrySettings
    from streams.kafka.registry import registry_client
    from streams.settings import KafkaSettings

    serializer = EventSerializer(
        registry_client(RegistrySettings()), "orders", topic_prefix=KafkaSettings().topic_prefix
    )
    node = nodes.parse(avsc.expanded("OrderPlaced"))
    assert isinstance(node, nodes.Record)
    dtypes = {field.name: nodes.dtype(field.node) for field in node.fields}
    stamp = Stamp(at=datetime.now(UTC), correlation_id="bench")
    events = [
        decide.place_order(PlaceOrder.model_validate_json(body), stamp) for body in orders.take(max(GROUP_COMMIT_SIZES))
    ]
    schema_id = int.from_bytes(serializer.serialize(events[0])[1:5], "big")  # the registry's, as the log writes it
    encoder = BatchEncoder(OrderPlaced, schema_id)

    def batch(group: Sequence[OrderPlaced]) -> list[bytes]:
        rows = [_row(node, codec.to_avro(event)) for event in group]
        return encoder.encode(pl.DataFrame(rows, schema=dtypes, orient="row"))

    out: dict[str, dict[str, float]] = {}
    for size in GROUP_COMMIT_SIZES:
        group = events[:size]
        assert batch(group) == [serializer.serialize(event) for event in group]  # the same bytes, or no figure
        rounds = max(5, 200 // size)
        timings: dict[str, list[float]] = {"per_record_us": [], "batch_encoder_us": []}
        for _ in range(repeat):
            for key, encode in (
                ("per_record_us", lambda g: [serializer.serialize(e) for e in g]),
                ("batch_encoder_us", batch),
            ):
                started = time.process_time()
                for _ in range(rounds):
                    encode(group)
                timings[key].append(1e6 * (time.process_time() - started) / rounds / size)
        out[str(size)] = {key: statistics.median(values) for key, values in timings.items()}
    return out


def _row(node: Any, value: Any) -> Any:
    """A fastavro value as the batch encoder's column holds it: uuids and enums as text, maps as key/value lists."""
    from schemas.batch import nodes

    if value is None:
        return None
    if isinstance(node, nodes.Optional):
        return _row(node.value, value)
    if isinstance(node, nodes.Record):
        return {field.name: _row(field.node, value[field.name]) for field in node.fields}
    if isinstance(node, nodes.Map):
        return [{"key": key, "value": _row(node.values, item)} for key, item in value.items()]
    if isinstance(value, uuid.UUID) or isinstance(node, nodes.Enum):
        return str(value)
    return value


async def eventlog_ticks(batches: list[Sequence[Any]], duration: float) -> dict[str, Any]:
    """KafkaEventLog.append of whole batches, one after another (as the API appends a batch), for ``duration``."""
    from schemas.settings import RegistrySettings
    from streams.eventlog import KafkaEventLog
    from streams.kafka.registry import registry_client
    from streams.settings import KafkaSettings

    log_ = KafkaEventLog(KafkaSettings(), registry_client(RegistrySettings()))
    try:
        await log_.append(batches[0][:10])  # serializer set-up and connections, not measured
        appended, i = 0, 0
        start = time.perf_counter()
        deadline = start + duration
        while time.perf_counter() < deadline:
            batch = batches[i % len(batches)]
            appended += len(await log_.append(batch))
            i += 1
        elapsed = time.perf_counter() - start
    finally:
        log_.close()
    return {"batches": i, "appended": appended, "seconds": elapsed, "per_s": appended / elapsed}


# --- the run ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    parser.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 15)")
    parser.add_argument(
        "--loads", type=ints, default=None, help="offered orders/s (default 100,250,500,1000,2000,5000)"
    )
    parser.add_argument("--workers", type=ints, default=None, help="API worker processes; a list measures each")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight for max throughput")
    parser.add_argument("--accounts", type=int, default=100, help="trading accounts orders are spread over")
    parser.add_argument("--tick-batches", type=ints, default=None, help="ticks per POST (default 1000,10000)")
    parser.add_argument("--tick-concurrency", type=int, default=2, help="tick batches in flight over HTTP")
    parser.add_argument("--quotes", type=Path, help="recorded quotes (parquet; default: data/market's Binance BTCUSDT)")
    add_run_options(
        parser, quick="short smoke run: 1 repetition of 3 s measurements", limit=0.25, retries=2, wait_s=300
    )
    parser.add_argument(
        "--profile", action="store_true", help="after the runs, profile the server with py-spy under the closed loop"
    )
    parser.add_argument(
        "--profile-rate",
        type=int,
        default=0,
        metavar="N",
        help="with --profile: under N orders/s offered (open loop) instead of the closed loop",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeat = args.repeat or (1 if quick else 3)
    args.duration = args.duration or (3.0 if quick else 15.0)
    args.loads = args.loads or ([250, 1000] if quick else [100, 250, 500, 1000, 2000, 5000])
    args.workers = args.workers or [DEFAULT_WORKERS]
    args.tick_batches = args.tick_batches or ([1000] if quick else [1000, 10000])
    if args.repeat < 1 or args.duration <= 0 or min(args.workers) < 1 or args.accounts < 1:
        parser.error("--repeat, --duration, --workers and --accounts must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = BenchRun.begin("order_entry")
    run_id, prefix, run_dir, users_file = bench.run_id, bench.prefix, bench.run_dir, bench.users_file
    vegeta = Vegeta(install_vegeta(), run_dir)
    log(
        f"run {run_id}: topic prefix {prefix!r}, scratch in {run_dir.relative_to(ROOT)}, load generator {vegeta.binary}"
    )

    passwords = {TRADER: secrets.token_urlsafe(16), FEED: secrets.token_urlsafe(16)}
    env = bench.env()
    os.environ.update(env)  # the in-process measurements (event log, raw producer) use the same namespace

    from api.auth import Role, add_user
    from schemas.serde import register_all
    from schemas.settings import RegistrySettings
    from streams import kafka
    from streams.kafka.registry import registry_client
    from streams.kafka.topics import TOPICS, TopicLayout, cluster_size, ensure_topics
    from streams.settings import KafkaSettings

    prepare_namespace(env)
    settings = KafkaSettings()
    admin = kafka.admin(settings)
    layout = TopicLayout.for_cluster(cluster_size(admin), settings.partitions)
    reference_specs = [spec for spec in TOPICS if spec.name in ("orders", "ticks")]
    ensure_topics(admin, layout, prefix + "reference.", specs=reference_specs)
    register_all(registry_client(RegistrySettings()), prefix)

    accounts = [f"BENCH-{i:04d}" for i in range(args.accounts)]
    add_user(users_file, TRADER, passwords[TRADER], [Role.TRADER], accounts)
    add_user(users_file, FEED, passwords[FEED], [Role.ADMIN], [])

    quotes = load_quotes(args.quotes)
    orders = Orders(run_id.replace("-", ""), accounts, quotes)
    ticks = Ticks(quotes)
    counter = LogCount(settings.bootstrap_servers)
    results: dict[str, Any] = {
        "benchmark": "order_entry",
        "run_id": run_id,
        "config": {
            "repeat": args.repeat,
            "duration_s": args.duration,
            "loads": args.loads,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "accounts": args.accounts,
            "tick_batches": args.tick_batches,
            "tick_concurrency": args.tick_concurrency,
            "topic_prefix": prefix,
            "partitions": layout.partitions,
            "replication_factor": layout.replication_factor,
            "producer": "streams.kafka.producer: enable.idempotence, acks=all, linger.ms=5, compression lz4",
            "rate_limit": env["TRADECORE_RATE_LIMIT"],
            "load_generator": "vegeta v12.12.0 (Go; bench/install_vegeta.sh), HTTP/1.1 keep-alive",
            "quick": args.quick,
        },
        "machine": machine(),
    }
    server: ApiServer | None = None
    guard = Guard(dict(bench.stack_roots), args.quiet_limit, args.quiet_wait, args.retries)
    try:
        results["direct"] = direct_phase(args, orders, ticks, guard, prefix)
        results["api"] = {}
        for workers in args.workers:
            server = ApiServer(workers, env, run_dir)
            server.start()
            assert server.proc is not None
            guard.roots["api"] = [server.proc.pid]
            results["api"][str(workers)] = api_phase(
                args, server, vegeta, orders, ticks, guard, counter, prefix, passwords
            )
            server.stop()
            server = None
            del guard.roots["api"]
        results["bare"] = bare_phase(args, vegeta, orders, guard, run_dir)
        results["disturbed_measurements_kept"] = guard.disturbed
    finally:
        if server is not None:
            server.stop()
        counter.close()
        bench.finish(args.keep)
    verdict(results)
    return bench.save(results)


def direct_phase(args: argparse.Namespace, orders: Orders, ticks: Ticks, guard: Guard, prefix: str) -> dict[str, Any]:
    """No HTTP: the raw producer (max rate, paced latency) and KafkaEventLog.append."""
    from streams import kafka
    from streams.settings import KafkaSettings

    log("building events the API's way (IngestTicks, validate, decide) and serializing them for the raw producer")
    pool = 20_000 if args.quick else 100_000
    pools = build_pools(ticks, orders, args.tick_batches, pool)
    log(
        f"  built {pools.build_ticks_per_s:,.0f} ticks/s (pydantic + validate + decide, one core), "
        f"encoded {pools.encode_ticks_per_s:,.0f} ticks/s (EventSerializer alone, one core); "
        f"record values: TickIngested {pools.tick_bytes:.0f} B, OrderPlaced {pools.order_bytes:.0f} B"
    )
    encoding = group_commit_encoding(orders, max(3, args.repeat))
    for size, figures in encoding.items():
        log(
            f"  OrderPlaced of a group commit of {size}: {figures['per_record_us']:.1f} µs CPU per event record by "
            f"record, {figures['batch_encoder_us']:.1f} µs with the batch encoder (frame included)"
        )
    producer = kafka.producer(KafkaSettings())
    topic_orders, topic_ticks = prefix + "reference.orders", prefix + "reference.ticks"
    orders_, ticks_ = pools.order_records, pools.tick_records
    raw_paced(producer, topic_orders, orders_, 1000, 1.0)  # connections and metadata, not measured
    runs: dict[str, list[dict[str, Any]]] = {}

    def measure(key: str, label: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            with CpuWindow(guard.roots, loadgen="bench") as cpu:
                out = work()
            return out | {"cpu": cpu.result}

        out = guard.run(label, once)
        runs.setdefault(key, []).append(out)
        return out

    for rep in range(args.repeat):
        log(f"direct, repetition {rep + 1}/{args.repeat}")
        out = measure(
            "raw_orders", "raw producer", lambda: raw_max_rate(producer, topic_orders, orders_, args.duration)
        )
        log(f"  raw producer, OrderPlaced: {out['per_s']:,.0f}/s acked ({out['failed']} failed)")
        out = measure("raw_ticks", "raw producer", lambda: raw_max_rate(producer, topic_ticks, ticks_, args.duration))
        log(f"  raw producer, TickIngested: {out['per_s']:,.0f}/s acked ({out['failed']} failed)")
        for size in args.tick_batches:
            batches = pools.tick_batches[size]

            def append(batches: list[Sequence[Any]] = batches) -> dict[str, Any]:
                return asyncio.run(eventlog_ticks(batches, args.duration))

            out = measure(f"eventlog_ticks_{size}", "event log", append)
            log(f"  KafkaEventLog.append, batches of {size}: {out['per_s']:,.0f} ticks/s")
        for load in args.loads:
            out = measure(
                f"raw_latency_{load}",
                f"raw producer at {load}/s",
                functools.partial(raw_paced, producer, topic_orders, orders_, load, args.duration),
            )
            log(
                f"  raw producer at {load}/s: p50 {out['p50_ms']:.2f} ms, p99 {out['p99_ms']:.2f} ms, "
                f"p99.9 {out['p999_ms']:.2f} ms"
            )
    producer.flush(30)
    summary: dict[str, Any] = {
        "group_commit_encoding": encoding,
        "build_ticks_per_s": pools.build_ticks_per_s,
        "encode_ticks_per_s": pools.encode_ticks_per_s,
        "record_bytes": {"TickIngested": pools.tick_bytes, "OrderPlaced": pools.order_bytes},
        "raw_orders_per_s": spread([r["per_s"] for r in runs["raw_orders"]]),
        "raw_ticks_per_s": spread([r["per_s"] for r in runs["raw_ticks"]]),
        "eventlog_ticks_per_s": {
            str(size): spread([r["per_s"] for r in runs[f"eventlog_ticks_{size}"]]) for size in args.tick_batches
        },
        "raw_latency": {
            str(load): {
                key: spread([r[key] for r in runs[f"raw_latency_{load}"]])
                for key in ("achieved_per_s", "p50_ms", "p99_ms", "p999_ms", "errors")
            }
            for load in args.loads
        },
        "runs": runs,
    }
    return summary


def api_phase(
    args: argparse.Namespace,
    server: ApiServer,
    vegeta: Vegeta,
    orders: Orders,
    ticks: Ticks,
    guard: Guard,
    counter: LogCount,
    prefix: str,
    passwords: dict[str, str],
) -> dict[str, Any]:
    assert server.proc is not None
    url = f"{server.url}/v1/orders"
    trader = server.token(TRADER, passwords[TRADER])
    feed = server.token(FEED, passwords[FEED])
    tag = f"w{server.workers}"

    def attack(name: str, rate: int, duration: float) -> dict[str, Any]:
        return guard.run(name, lambda: attack_once(name, rate, duration))

    def attack_once(name: str, rate: int, duration: float) -> dict[str, Any]:
        server.settle()
        if rate:
            count = int(rate * duration) + rate  # vegeta sends rate x duration; never more than the targets
            workers, max_workers = min(rate // 50 + 10, 200), 2_000
        else:
            count = int(MAX_CLOSED_LOOP_RATE * duration)
            workers = max_workers = args.concurrency
        before = counter(prefix + "orders")
        steps_before = commit_steps.scrape(server.url)
        out = vegeta.attack(
            name,
            post_targets(url, orders.take(count), trader),
            count,
            rate=rate,
            duration=duration,
            workers=workers,
            max_workers=max_workers,
            cpu_roots=guard.roots,
        )
        out["in_log"] = counter(prefix + "orders") - before
        out["commit_steps"] = commit_steps.moved(steps_before, commit_steps.scrape(server.url))
        if out.get("targets_exhausted"):
            raise BenchError(f"{name}: the server took more than {MAX_CLOSED_LOOP_RATE} orders/s; raise the cap")
        return out

    log(f"workers={server.workers}: warm-up (3 s at 300 orders/s, one tick batch), not measured")
    attack_once(f"{tag}-warmup", 300, 3)
    asyncio.run(http_ticks(server.url, feed, ticks, min(args.tick_batches), 1, 1))
    server.settle()

    runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(args.repeat):
        log(f"workers={server.workers}, repetition {rep + 1}/{args.repeat}")
        out = attack(f"{tag}-r{rep}-max", 0, args.duration)
        runs.setdefault("max", []).append(out)
        log(
            f"  closed loop, {args.concurrency} in flight: {out['accepted_per_s']:,.0f} accepted/s, "
            f"p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, errors {out['errors']}, in log {out['in_log']}, "
            f"cpu {out['cpu']}"
        )
        log(f"    group commits, from the API's /metrics: {commit_steps.describe(out['commit_steps'])}")
        for load in args.loads:
            out = attack(f"{tag}-r{rep}-load{load}", load, args.duration)
            runs.setdefault(f"load_{load}", []).append(out)
            log(
                f"  open loop {load}/s: sent {out['sent_per_s']:,.0f}/s, accepted {out['accepted_per_s']:,.0f}/s, "
                f"p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, p99.9 {out['p999_ms']:.1f} ms, "
                f"errors {out['errors']} {out['error_kinds'] or ''}"
            )
            log(f"    group commits, from the API's /metrics: {commit_steps.describe(out['commit_steps'])}")
        for size in args.tick_batches:

            def post_ticks(size: int = size) -> dict[str, Any]:
                server.settle()
                before = counter(prefix + "ticks")
                in_flight = args.tick_concurrency * server.workers
                with CpuWindow(guard.roots, loadgen="bench") as cpu:
                    out = asyncio.run(http_ticks(server.url, feed, ticks, size, args.duration, in_flight))
                return out | {"in_log": counter(prefix + "ticks") - before, "cpu": cpu.result}

            out = guard.run(f"POST /v1/ticks x{size}", post_ticks)
            runs.setdefault(f"ticks_{size}", []).append(out)
            log(
                f"  POST /v1/ticks, batches of {size}: {out['per_s']:,.0f} ticks/s, batch p50 "
                f"{out['batch_p50_ms']:.0f} ms, errors {out['errors']}, cpu {out['cpu']}"
            )

    profile = None
    if args.profile:
        profile = profile_server(args, server, tag, attack_once, guard)

    def cpu_of(key: str) -> dict[str, Any]:
        names = runs[key][0]["cpu"].keys()
        return {name: statistics.median(r["cpu"][name] for r in runs[key]) for name in names}

    return {
        "workers": server.workers,
        "max": {
            key: spread([r[key] for r in runs["max"]])
            for key in ("accepted_per_s", "p50_ms", "p99_ms", "p999_ms", "errors", "in_log")
        }
        | {
            "cpu": cpu_of("max"),
            "server_cpu_ms_per_order": spread([_cpu_ms(r) for r in runs["max"]]),
        },
        "loads": {
            str(load): {
                key: spread([r[key] for r in runs[f"load_{load}"]])
                for key in ("sent_per_s", "accepted_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "errors", "in_log")
            }
            | {
                "cpu": cpu_of(f"load_{load}"),
                "server_cpu_ms_per_order": spread([_cpu_ms(r) for r in runs[f"load_{load}"]]),
            }
            for load in args.loads
        },
        "ticks": {
            str(size): {key: spread([r[key] for r in runs[f"ticks_{size}"]]) for key in ("per_s", "batch_p50_ms")}
            | {"errors": sum(r["errors"] for r in runs[f"ticks_{size}"]), "cpu": cpu_of(f"ticks_{size}")}
            for size in args.tick_batches
        },
        "profile": profile,
        "runs": runs,
    }


def bare_phase(args: argparse.Namespace, vegeta: Vegeta, orders: Orders, guard: Guard, run_dir: Path) -> dict[str, Any]:
    """The reference: the bare FastAPI+pydantic endpoint (``bench/bare_orders.py``) under the same closed loop and
    the same bodies as ``POST /v1/orders``, each worker count; its server CPU per request."""
    summary: dict[str, Any] = {}
    for workers in args.workers:
        server = BareServer(workers, run_dir)
        server.start()
        assert server.proc is not None
        guard.roots["api"] = [server.proc.pid]
        url = f"{server.url}/v1/orders"

        def attack(name: str, duration: float, server: BareServer = server, url: str = url) -> dict[str, Any]:
            server.settle()
            count = int(MAX_CLOSED_LOOP_RATE * duration)
            out = vegeta.attack(
                name,
                post_targets(url, orders.take(count)),
                count,
                rate=0,
                duration=duration,
                workers=args.concurrency,
                max_workers=args.concurrency,
                cpu_roots=guard.roots,
            )
            if out.get("targets_exhausted"):
                raise BenchError(f"{name}: the bare endpoint took more than {MAX_CLOSED_LOOP_RATE}/s; raise the cap")
            return out

        try:
            attack(f"bare-w{workers}-warmup", 2)
            runs = []
            for rep in range(args.repeat):
                name = f"bare-w{workers}-r{rep}"
                out = guard.run(name, functools.partial(attack, name, args.duration))
                runs.append(out)
                log(
                    f"  bare FastAPI+pydantic endpoint, {workers} worker(s), closed loop: "
                    f"{out['accepted_per_s']:,.0f} answered/s, p50 {out['p50_ms']:.1f} ms, "
                    f"server CPU {_cpu_ms(out) or 0:.3f} ms per request, cpu {out['cpu']}"
                )
        finally:
            server.stop()
            del guard.roots["api"]
        summary[str(workers)] = {
            "accepted_per_s": spread([r["accepted_per_s"] for r in runs]),
            "server_cpu_ms_per_request": spread([_cpu_ms(r) for r in runs]),
            "errors": spread([r["errors"] for r in runs]),
            "cpu": {name: statistics.median(r["cpu"][name] for r in runs) for name in runs[0]["cpu"]},
            "runs": runs,
        }
    return summary


def _cpu_ms(attack: dict[str, Any]) -> float | None:
    """Server CPU per accepted request, ms: the server's cores over the accepted rate."""
    return 1000 * attack["cpu"]["api"] / attack["accepted_per_s"] if attack.get("accepted_per_s") else None


def profile_server(
    args: argparse.Namespace,
    server: ApiServer,
    tag: str,
    attack: Callable[[str, int, float], dict[str, Any]],
    guard: Guard,
) -> dict[str, Any] | None:
    """py-spy on every server process (GIL-holding threads only) during one more attack: closed loop, or
    ``--profile-rate`` orders/s."""
    assert server.proc is not None
    out = server.log_path.with_name(f"profile-workers{server.workers}.txt")
    seconds = max(5, int(args.duration))
    load = f"{args.profile_rate:,} orders/s offered" if args.profile_rate else "the closed loop"
    log(f"  profiling the server with py-spy for {seconds} s under {load} -> {out.relative_to(ROOT)}")
    done = profiled(server.proc.pid, out, seconds, guard, lambda: attack(f"{tag}-profile", args.profile_rate, seconds))
    if done is None:
        return None
    measured, shares = done
    cpu_ms = 1000 * measured["cpu"]["api"] / measured["accepted_per_s"] if measured["accepted_per_s"] else None
    log(f"  under the profiler: {measured['accepted_per_s']:,.0f} accepted/s; top: {list(shares.items())[:4]}")
    return {
        "file": str(out.relative_to(ROOT)),
        "load": load,
        "accepted_per_s_profiled": measured["accepted_per_s"],
        "server_cpu_ms_per_order": cpu_ms,
        "shares_of_gil_samples": shares,
    }


# --- the verdict and the table ------------------------------------------------------------------------------------


def verdict(results: dict[str, Any]) -> None:
    """Ratios to the raw producer, the best worker count, and each issue target met or not."""
    direct = results["direct"]
    raw_orders = direct["raw_orders_per_s"]["median"]
    raw_ticks = direct["raw_ticks_per_s"]["median"]
    best_key = max(results["api"], key=lambda k: results["api"][k]["max"]["accepted_per_s"]["median"] or 0)
    ratios: dict[str, Any] = {
        "eventlog_ticks_vs_raw": {
            size: ratio(s["median"], raw_ticks) for size, s in direct["eventlog_ticks_per_s"].items()
        },
    }
    for key, api in results["api"].items():
        ratios[f"workers={key}"] = {
            "orders_vs_raw": ratio(api["max"]["accepted_per_s"]["median"], raw_orders),
            "ticks_vs_raw": {size: ratio(t["per_s"]["median"], raw_ticks) for size, t in api["ticks"].items()},
            "p99_vs_raw_p99": {
                load: ratio(v["p99_ms"]["median"], direct["raw_latency"].get(load, {}).get("p99_ms", {}).get("median"))
                for load, v in api["loads"].items()
            },
            "server_cpu_vs_bare": ratio(
                api["max"]["server_cpu_ms_per_order"]["median"],
                results["bare"][key]["server_cpu_ms_per_request"]["median"],
            ),
        }
    best = results["api"][best_key]
    best_ticks = max((t["per_s"]["median"] or 0) for t in best["ticks"].values())
    p99_1000 = best["loads"].get("1000", {}).get("p99_ms", {}).get("median")
    results["ratios"] = ratios
    results["best_workers"] = int(best_key)
    cpu_ms = best["max"]["server_cpu_ms_per_order"]["median"]
    cpu_vs_bare = ratios[f"workers={best_key}"]["server_cpu_vs_bare"]
    results["targets"] = {
        "server_cpu_ms_per_order": {
            "target": TARGET_SERVER_CPU_MS,
            "measured": cpu_ms,
            "met": None if cpu_ms is None else cpu_ms <= TARGET_SERVER_CPU_MS,
        },
        "server_cpu_vs_bare": {
            "target": TARGET_CPU_VS_BARE,
            "measured": cpu_vs_bare,
            "met": None if cpu_vs_bare is None else cpu_vs_bare <= TARGET_CPU_VS_BARE,
        },
        "orders_per_s": {
            "target": TARGET_ORDERS_PER_S,
            "measured": best["max"]["accepted_per_s"]["median"],
            "met": (best["max"]["accepted_per_s"]["median"] or 0) >= TARGET_ORDERS_PER_S,
        },
        "p99_ms_at_1000_per_s": {
            "target": TARGET_P99_MS_AT_1000,
            "measured": p99_1000,
            "met": None if p99_1000 is None else p99_1000 <= TARGET_P99_MS_AT_1000,
        },
        "ticks_per_s": {"target": TARGET_TICKS_PER_S, "measured": best_ticks, "met": best_ticks >= TARGET_TICKS_PER_S},
        "ticks_vs_raw": {
            "target": TARGET_TICKS_VS_RAW,
            "measured": ratio(best_ticks, raw_ticks),
            "met": (ratio(best_ticks, raw_ticks) or 0) >= TARGET_TICKS_VS_RAW,
        },
    }


def _cpu(cpu: dict[str, float]) -> str:
    order = ("api", "loadgen", "kafka", "postgres", "registry", "other", "machine")
    return " ".join(f"{k} {cpu[k]:.2f}" for k in order if k in cpu)


def table(results: dict[str, Any]) -> str:
    cfg, direct = results["config"], results["direct"]
    raw_orders = direct["raw_orders_per_s"]["median"]
    raw_ticks = direct["raw_ticks_per_s"]["median"]
    lines = [
        f"order_entry run {results['run_id']}: {cfg['repeat']} x {cfg['duration_s']:g} s per measurement, "
        f"median (min-max); {results['machine']['cpus']} CPUs, {results['machine']['cpu_model']}",
        f"CPU in cores (1.00 = one core busy) during each measurement; 'other' = processes outside the benchmark. "
        f"{results.get('disturbed_measurements_kept', 0)} measurement(s) kept although other processes disturbed them.",
        "",
        "Reference: raw confluent-kafka producer (idempotent, acks=all, linger 5 ms, lz4), same bytes",
        f"  OrderPlaced records/s   {fmt_spread(direct['raw_orders_per_s'])}",
        f"  TickIngested records/s  {fmt_spread(direct['raw_ticks_per_s'])}",
    ]
    for load, lat in direct["raw_latency"].items():
        lines.append(
            f"  ack latency at {int(load):>5}/s  p50 {fmt_ms(lat['p50_ms'])}  p99 {fmt_ms(lat['p99_ms'])}  "
            f"p99.9 {fmt_ms(lat['p999_ms'])} ms"
        )
    lines += ["", "Ticks through KafkaEventLog.append (no HTTP), one batch at a time"]
    for size, stat in direct["eventlog_ticks_per_s"].items():
        lines.append(
            f"  batches of {int(size):>6}  {fmt_spread(stat)} ticks/s   x{fmt(ratio(stat['median'], raw_ticks), 2)} raw"
        )
    lines.append(f"  (building them: {direct['build_ticks_per_s']:,.0f} ticks/s for pydantic + validate + decide)")
    lines.append(f"  (encoding them: {direct['encode_ticks_per_s']:,.0f} ticks/s for EventSerializer alone, one core)")
    lines += ["", "Encoding the OrderPlaced of one group commit, µs of CPU per event, one core (same bytes)"]
    for size, figures in direct["group_commit_encoding"].items():
        slower = fmt(ratio(figures["batch_encoder_us"], figures["per_record_us"]), 1)
        lines.append(
            f"  {int(size):>4} per commit: record by record {figures['per_record_us']:7.1f}   batch encoder "
            f"{figures['batch_encoder_us']:7.1f}  (x{slower})"
        )
    for key, api in results["api"].items():
        lines += ["", f"API server, {key} worker(s) — tradecore api, uvicorn, real stack"]
        m = api["max"]
        lines.append(
            f"  max accepted POST /v1/orders/s  {fmt_spread(m['accepted_per_s'])}  "
            f"x{fmt(ratio(m['accepted_per_s']['median'], raw_orders), 3)} raw"
            f"  (closed loop, {cfg['concurrency']} in flight; p50 {fmt(m['p50_ms']['median'], 1)} ms, "
            f"p99 {fmt(m['p99_ms']['median'], 1)} ms, errors {fmt(m['errors']['median'])})"
        )
        bare = results["bare"][key]
        lines.append(
            f"    server CPU per accepted order {fmt_spread(m['server_cpu_ms_per_order'], 3)} ms; "
            f"cpu cores: {_cpu(m['cpu'])}"
        )
        versus = fmt(results["ratios"][f"workers={key}"]["server_cpu_vs_bare"], 2)
        lines.append(
            f"  reference: bare FastAPI+pydantic endpoint (bench/bare_orders.py), same loop and bodies: "
            f"{fmt_spread(bare['accepted_per_s'])} answered/s, server CPU "
            f"{fmt_spread(bare['server_cpu_ms_per_request'], 3)} ms per request -> orders x{versus} the bare CPU"
        )
        lines.append(
            f"  {'offered/s':>9} {'sent/s':>7} {'accepted/s':>10} {'errors':>6}  {'p50 ms':<22} {'p99 ms':<22} "
            f"{'p99.9 ms':<22} {'p99/raw':>7} {'CPU ms':>6}  cpu cores"
        )
        for load, v in api["loads"].items():
            raw_p99 = direct["raw_latency"].get(load, {}).get("p99_ms", {}).get("median")
            lines.append(
                f"  {int(load):>9} {fmt(v['sent_per_s']['median']):>7} {fmt(v['accepted_per_s']['median']):>10} "
                f"{fmt(v['errors']['median']):>6}  {fmt_ms(v['p50_ms']):<22} {fmt_ms(v['p99_ms']):<22} "
                f"{fmt_ms(v['p999_ms']):<22} {fmt(ratio(v['p99_ms']['median'], raw_p99), 1):>7} "
                f"{fmt(v['server_cpu_ms_per_order']['median'], 3):>6}  {_cpu(v['cpu'])}"
            )
        for size, t in api["ticks"].items():
            lines.append(
                f"  POST /v1/ticks, {int(size):>6} per batch: {fmt_spread(t['per_s'])} ticks/s  "
                f"x{fmt(ratio(t['per_s']['median'], raw_ticks), 3)} raw  "
                f"(batch p50 {fmt(t['batch_p50_ms']['median'])} ms, "
                f"errors {t['errors']}; cpu {_cpu(t['cpu'])})"
            )
    for key, api in results["api"].items():
        profile = api.get("profile")
        if profile:
            lines += [
                "",
                f"Where the server's Python time goes ({key} worker(s), py-spy, GIL-holding samples, "
                f"{profile['load']} at {profile['accepted_per_s_profiled']:,.0f} orders/s, "
                f"{fmt(profile['server_cpu_ms_per_order'], 2)} ms CPU per order)",
            ]
            for name, share in profile["shares_of_gil_samples"].items():
                if name != "samples":
                    lines.append(f"  {100 * share:5.1f}%  {name}")
    lines += ["", f"Issue targets (best worker count: {results['best_workers']})"]
    names = {
        "server_cpu_ms_per_order": "server CPU per accepted order (ms)",
        "server_cpu_vs_bare": "server CPU per order / bare endpoint's",
        "orders_per_s": "accepted POST /v1/orders per second",
        "p99_ms_at_1000_per_s": "p99 at 1,000 orders/s offered (ms)",
        "ticks_per_s": "ticks ingested per second (HTTP)",
        "ticks_vs_raw": "ticks ingested / raw producer",
    }
    lines += target_lines(results["targets"], names)
    return "\n".join(lines)


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The figures without the individual runs."""
    out = {k: v for k, v in results.items() if k not in ("direct", "api", "bare")}
    out["bare"] = {k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in results["bare"].items()}
    out["direct"] = {k: v for k, v in results["direct"].items() if k != "runs"}
    out["api"] = {k: {kk: vv for kk, vv in v.items() if kk != "runs"} for k, v in results["api"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return report(lambda: run(args), table, compact)


if __name__ == "__main__":
    sys.exit(main())
