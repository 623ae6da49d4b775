"""Stream-processor benchmark (issue 4, item 8): events per second through each processor's real host, beside a raw
confluent-kafka loop doing the same decoding, computation and encoding in the same run; and how soon an order
placed becomes a decision visible to a ``read_committed`` consumer, beside the raw producer's own records.

    .venv/bin/python bench/processors.py            # the full run (≈ 16 min), table on stdout, JSON last
    .venv/bin/python bench/processors.py --quick    # smoke test (≤ 3 min)

Throughput, each ``--repeat`` times (median and min-max reported), for risk, execution, executions-by-account,
positions, signals and strategy:

* the inputs are written once, before any measurement, into a fresh namespace ``bench-<run>.``: a trading session
  over the real Binance BTCUSDT quotes (``tests.support.market_log``: orders, cancels, ticks) and what the pure
  processors derive from it in-process (risk's decisions, the venue's executions, re-keyed by account); and the
  ticks of every recorded quote and bar file (``tests.domain.signals.market``) with the signals derived from them;
* the host: ``streams.host.runner.ProcessorHost`` in this process (a thread), exactly as ``tradecore worker``
  hosts it (transactions, merger, journal), reading its inputs from offset 0 in a fresh consumer group; timed from
  the first record consumed to the commit of the transaction holding the last one — start-up (group join) is left
  out — and how much of that it waited for input while its merger held records ("host held s": grace periods at
  the ends of partitions, a slower input), which the raw loop, reading a complete log, never does;
* the reference: a raw loop in this process — a ``read_committed`` consumer assigned to the same input partitions,
  the same batch decoding as the host (``streams.host.decoding.InputDecoder``: each consumed batch at once), the
  same ``processor.handle`` — or, for a processor the host hands frames (signals, ``streams.host.frames``), each
  partition's run as one frame through the same ``handle_frame`` — the same ``EventSerializer``, and a plain
  idempotent producer (no transactions, no offsets committed), in the host's event-time order (the same merger,
  a partition done once read to the end the complete log had: no grace periods); timed from the first record
  consumed to the last output acknowledged. Its per-record time is split into decode, compute,
  encode and Kafka client (consume + produce calls).

Latency: a ``tradecore worker risk`` process (``--batch-ms`` as given) over a fresh namespace with fresh ticks for
reference prices; OrderPlaced records produced by a raw producer at a constant rate (``--loads``); a
``read_committed`` consumer in this process reads ``orders`` and ``orders.checked`` and takes, per order, produce
time → the time its record (reference) and its decision (risk) became visible.

Every measurement records the CPU of each component (the worker or this process, Kafka, the registry, the rest of
the machine) over the whole measurement, set-up included: 2 cores are shared. A throughput run also records this
process's CPU over its timed loop alone (first record to last commit or flush), per record: the loop's own cost,
which the measurement's average dilutes with its set-up. Progress goes to stderr, the table to stdout, the last
stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import common
from deploy import launch

# The issues' targets (issue 4; issue 16 raised the host's share of its raw loop, both on the batch codec).
TARGET_P99_MS_AT_1000 = 25.0
TARGET_SIGNALS_TICKS_PER_S = 50_000
TARGET_VS_RAW = 0.7

PROCESSORS = ("risk", "execution", "executions-by-account", "positions", "signals", "strategy")
INSTRUMENT = "BTCUSDT"
# The signal follower trades every instrument of the recorded files, one account per indicator.
STRATEGY_CLIPS = {"BTCUSDT": "0.01", "EURUSD": "1000", "BTC-PERP": "0.01"}
STRATEGY_INDICATORS = ("ema_cross", "rsi", "bollinger", "vwap")


# --- inputs -------------------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """Where each processor's input log lives (a namespace), and how many records it holds."""

    namespace: dict[str, str]  # processor -> input namespace
    records: dict[str, int]  # processor -> records in its input topics
    written: dict[str, int]  # topic (namespace + name) -> records written


def strategy_accounts() -> str:
    return json.dumps(
        [
            {
                "account_id": f"STRAT-{instrument}-{indicator}",
                "instrument": instrument,
                "quantity": clip,
                "indicator": indicator,
            }
            for instrument, clip in STRATEGY_CLIPS.items()
            for indicator in STRATEGY_INDICATORS
        ]
    )


def write_inputs(args: argparse.Namespace, client: Any, trade: str, market: str) -> Inputs:
    """The session and the market ticks, plus what the pure processors derive from them, written to Kafka."""
    from schemas.events import Event, OrderPlaced, TickIngested
    from schemas.serde import EventSerializer
    from streams import kafka
    from streams.host.processor import event_time_ms
    from streams.processors import ProcessorSettings
    from streams.settings import KafkaSettings
    from streams.worker import PROCESSORS as MAKERS
    from tests.domain.signals.market import binance_btcusdt, ftx_btcperp, histdata_eurusd
    from tests.support.market_log import session

    settings = ProcessorSettings()
    common.log(f"building a session of {args.orders:,} orders over the real BTCUSDT quotes (tests.support.market_log)")
    trading = session(args.orders)
    risk, execution = MAKERS["risk"](settings), MAKERS["execution"](settings)
    checked: list[Event] = []
    executions: list[Event] = []
    for event in trading:
        decisions = [o for o in risk.handle("orders" if not isinstance(event, TickIngested) else "ticks", event)]
        if isinstance(event, TickIngested):
            executions += [e for e in execution.handle("ticks", event) if isinstance(e, Event)]
        for decision in decisions:
            assert isinstance(decision, Event)
            checked.append(decision)
            executions += [e for e in execution.handle("orders.checked", decision) if isinstance(e, Event)]
    common.log(
        f"  {sum(isinstance(e, OrderPlaced) for e in trading):,} orders, {len(trading):,} session records; "
        f"risk derived {len(checked):,} decisions, the venue {len(executions):,} executions"
    )

    common.log("loading every recorded feed as ticks (tests.domain.signals.market: Binance, histdata EURUSD, FTX bars)")
    ticks = sorted(
        [t for feed in (binance_btcusdt(), histdata_eurusd(), ftx_btcperp()) for t in feed.ticks],
        key=lambda t: t.envelope.occurred_at,
    )[: args.ticks]
    signals_processor = MAKERS["signals"](settings)
    signals = [s for t in ticks for s in signals_processor.handle("ticks", t) if isinstance(s, Event)]
    common.log(f"  {len(ticks):,} ticks; the signal engine derived {len(signals):,} signals")

    producer = kafka.producer(KafkaSettings())
    written: dict[str, int] = {}

    def write(namespace: str, topic: str, events: Sequence[Event], key_by_account: bool = False) -> None:
        source = "executions" if topic == "executions.by-account" else topic
        serializer = EventSerializer(client, source, topic_prefix=namespace)
        for event in events:
            key = getattr(event, "account_id").encode() if key_by_account else serializer.key(event)  # noqa: B009
            value = serializer.serialize(event)
            while True:
                try:
                    producer.produce(namespace + topic, value, key, timestamp=event_time_ms(event))
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        written[namespace + topic] = len(events)

    common.log("writing the input logs")
    write(trade, "orders", [e for e in trading if not isinstance(e, TickIngested)])
    write(trade, "ticks", [e for e in trading if isinstance(e, TickIngested)])
    write(trade, "orders.checked", checked)
    write(trade, "executions", executions)
    write(trade, "executions.by-account", executions, key_by_account=True)
    write(market, "ticks", ticks)
    write(market, "signals", signals)
    if producer.flush(120):
        raise common.BenchError("the input logs were not all acknowledged within 120 s → is Kafka overloaded?")
    namespace = {name: market if name in ("signals", "strategy") else trade for name in PROCESSORS}
    records = {}
    for name in PROCESSORS:
        processor = MAKERS[name](settings)
        records[name] = sum(written.get(namespace[name] + t, 0) for t in processor.partitioned + processor.broadcast)
    return Inputs(namespace, records, written)


# --- throughput: the host and the raw loop ------------------------------------------------------------------------


def host_run(name: str, client: Any, inputs: Inputs, output: str, batch_ms: int, grace_ms: int) -> dict[str, Any]:
    """The real host over the whole input log, in a thread; timed from first record consumed to last commit."""
    from streams.host.runner import HostConfig, ProcessorHost
    from streams.processors import ProcessorSettings
    from streams.settings import KafkaSettings
    from streams.worker import PROCESSORS as MAKERS

    total = inputs.records[name]
    config = HostConfig(input_prefix=inputs.namespace[name], output_prefix=output, batch_ms=batch_ms, grace_ms=grace_ms)
    host = ProcessorHost(MAKERS[name](ProcessorSettings()), KafkaSettings(), client, config)
    stop = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            host.run(stop)
        except BaseException as err:  # reported below, with the processor's name
            failure.append(err)
            stop.set()

    thread = threading.Thread(target=serve, name=f"host-{name}", daemon=True)
    started = time.monotonic()
    thread.start()
    first = last_commit = None
    commits = 0
    held_at_first = held_at_commit = 0.0
    cpu_at_first = cpu_at_commit = 0.0  # this process's CPU (the host's thread and librdkafka's) at those moments
    settle_s = batch_ms / 1000 + 0.5
    try:
        while not stop.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            stats = host.stats
            if first is None and stats.consumed > 0:
                first, held_at_first, cpu_at_first = now, stats.held_wait_s, time.process_time()
            if stats.commits != commits:
                commits, last_commit, held_at_commit = stats.commits, now, stats.held_wait_s
                cpu_at_commit = time.process_time()
            if stats.consumed >= total and last_commit is not None and now - last_commit > settle_s:
                break
            if time.monotonic() - started > 900:
                raise common.BenchError(f"{name}: the host consumed {stats.consumed:,} of {total:,} records in 15 min")
    finally:
        stop.set()
        thread.join(120)
    if failure:
        raise common.BenchError(f"{name}: the host failed: {failure[0]!r}")
    assert first is not None and last_commit is not None
    seconds = last_commit - first
    s = host.stats
    return {
        "records": s.consumed,
        "outputs": s.produced,
        "dead_lettered": s.dead_lettered,
        "commits": s.commits,
        "restarts": s.restarts,
        "seconds": seconds,
        "per_s": s.consumed / seconds,
        "held_wait_s": held_at_commit - held_at_first,
        "cpu_s": cpu_at_commit - cpu_at_first,
    }


def raw_run(name: str, client: Any, inputs: Inputs, output: str) -> dict[str, Any]:
    """Consumer → the same batch decoding, merge, handle, serialize → idempotent producer; no transactions."""
    from schemas.serde import EventSerializer
    from streams import kafka
    from streams.host.decoding import InputDecoder
    from streams.host.frames import FrameTaker
    from streams.host.inputs import Inputs as HostInputs
    from streams.host.processor import Forward, event_time_ms
    from streams.kafka.logreader import RawRecord, raw_records
    from streams.processors import ProcessorSettings
    from streams.settings import KafkaSettings
    from streams.worker import PROCESSORS as MAKERS

    settings = KafkaSettings()
    namespace = inputs.namespace[name]
    processor = MAKERS[name](ProcessorSettings())
    topics = [namespace + t for t in processor.partitioned + processor.broadcast]
    host_inputs = HostInputs(namespace, processor.partitioned, processor.broadcast)
    decoder = InputDecoder(host_inputs, client)
    frames = RawFrames(processor, host_inputs, client) if FrameTaker.fits(processor, host_inputs) else None
    encoders: dict[str, EventSerializer] = {}
    consumer = kafka.consumer(settings, f"{output}raw-{name}")
    assignment = [
        TopicPartition(topic, p, OFFSET_BEGINNING)
        for topic in topics
        for p in consumer.list_topics(topic, timeout=30).topics[topic].partitions
    ]
    consumer.assign(assignment)
    merged = CompleteMerge(host_inputs, consumer, assignment)
    producer = kafka.producer(settings, **{"linger.ms": 2})  # the host's linger
    total = inputs.records[name]
    consumed = produced = undecodable = 0
    decode_s = compute_s = encode_s = 0.0
    perf = time.perf_counter
    first = None
    cpu_at_first = 0.0
    deadline = time.monotonic() + 900
    try:
        while consumed < total:
            if time.monotonic() > deadline:
                raise common.BenchError(f"{name}: the raw loop consumed {consumed:,} of {total:,} records in 15 min")
            messages = consumer.consume(2000, 0.5)
            if first is None and messages:
                first, cpu_at_first = perf(), time.process_time()
            t0 = perf()
            records = raw_records(messages)
            if frames is not None:  # as the host does: each partition's run as one frame
                runs: dict[tuple[str, int], list[RawRecord]] = {}
                for record in records:
                    runs.setdefault((record.topic, record.partition), []).append(record)
                derived = []
                for run in runs.values():
                    found, took = frames.derive(run)
                    derived += found
                    decode_s += took[0]
                    compute_s += took[1]
                    consumed += len(run)
                undecodable = frames.undecodable
            else:
                derived = []
                decoded = decoder.decode(records)
                decode_s += perf() - t0
                consumed += len(decoded)
                for item in merged.take(decoded, consumer, complete=consumed >= total):
                    if item.event is None:
                        undecodable += 1
                        continue
                    t1 = perf()
                    derived.append((item.record, processor.handle(item.record.topic[len(namespace) :], item.event)))
                    compute_s += perf() - t1
            for msg, outputs in derived:
                for out in outputs:
                    t3 = perf()
                    if isinstance(out, Forward):
                        target, key, value, stamp = output + out.topic, out.key.encode(), msg.value, msg.timestamp_ms
                    else:
                        route = out.route().topic
                        encoder = encoders.get(route)
                        if encoder is None:
                            encoder = encoders[route] = EventSerializer(client, route, topic_prefix=output)
                        target, key, value, stamp = (
                            encoder.topic,
                            encoder.key(out),
                            encoder.serialize(out),
                            event_time_ms(out),
                        )
                    encode_s += perf() - t3
                    while True:
                        try:
                            producer.produce(target, value, key, timestamp=stamp)
                            break
                        except BufferError:
                            producer.poll(0.01)
                    produced += 1
            producer.poll(0)
        if producer.flush(120):
            raise common.BenchError(f"{name}: the raw loop's outputs were not all acknowledged within 120 s")
        end, cpu_at_end = perf(), time.process_time()
    finally:
        consumer.close()
    assert first is not None
    seconds = end - first
    # Encoding time above includes the first serializer set-up per output topic (a registry look-up): negligible.
    kafka_s = max(0.0, seconds - decode_s - compute_s - encode_s)
    return {
        "records": consumed,
        "outputs": produced,
        "undecodable": undecodable,
        "seconds": seconds,
        "per_s": consumed / seconds,
        "cpu_s": cpu_at_end - cpu_at_first,
        "us_per_record": {
            "decode": 1e6 * decode_s / consumed,
            "compute": 1e6 * compute_s / consumed,
            "encode": 1e6 * encode_s / consumed,
            "kafka_and_loop": 1e6 * kafka_s / consumed,
        },
    }


class CompleteMerge:
    """The raw loop's records in the host's event-time order (``streams.host.merge``), without the host's grace
    periods: the input log is complete before the loop starts, so a partition is done once the consumer's position
    is at the end it had then. Without it the raw loop took execution's orders and ticks in fetch order and derived
    other fills (13,930 against the host's 21,842): a ratio of different work."""

    def __init__(self, inputs: Any, consumer: Any, assignment: list[TopicPartition]) -> None:
        self._inputs = inputs
        self._ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in assignment}
        self._merger = inputs.merger({(inputs.rank[t], p) for t, p in self._ends})

    def take(self, decoded: list[Any], consumer: Any, *, complete: bool) -> list[Any]:
        """What ``decoded`` releases, with what the merger held, in order; ``complete``: every input record has been
        fetched, so everything held goes (a partition's end may be a commit marker the position has not passed)."""
        for item in decoded:
            self._merger.add(self._inputs.stamped(item))
        done: dict[tuple[int, int], bool] = {}

        def read(source: tuple[int, int]) -> bool:
            if complete:
                return True
            if source not in done:
                tp = TopicPartition(self._inputs.topics[source[0]], source[1])
                [position] = consumer.position([tp])
                done[source] = position.offset >= self._ends[(tp.topic, tp.partition)] or (
                    position.offset < 0 and self._ends[(tp.topic, tp.partition)] <= 0
                )
            return done[source]

        return [stamped.item for stamped in self._merger.release(read)]


class RawFrames:
    """The raw loop's take of a partition's run as one frame, as ``streams.host.frames`` takes it: the same
    ``RunDecoder``, ``handle_frame``; no transaction, no metrics, no dead letters written."""

    def __init__(self, processor: Any, inputs: Any, client: Any) -> None:
        from streams.host.frames import RunDecoder

        self.name = inputs.name(inputs.topics[0])
        self.processor = processor
        self.decoder = RunDecoder(inputs, client)
        self.undecodable = 0

    def derive(self, run: list[Any]) -> tuple[list[tuple[Any, Any]], tuple[float, float]]:
        """What each record of ``run`` derives, as (record, outputs); and the seconds spent decoding and computing."""
        perf = time.perf_counter
        began = perf()
        good, places, bad = self.decoder.decode(run)
        self.undecodable += len(bad)
        decoded = perf()
        found = self.processor.handle_frame(self.name, good, self.decoder.events(good)) if good.height else []
        derived = [(run[places[row]], outputs) for row, outputs in found if not isinstance(outputs, Exception)]
        return derived, (decoded - began, perf() - decoded)


def throughput_phase(
    args: argparse.Namespace, client: Any, inputs: Inputs, guard: common.Guard, prefix: str, admin: Any, layout: Any
) -> dict[str, Any]:
    from schemas.serde import register_all
    from streams.kafka.topics import ensure_topics

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for repeat in range(args.repeat):
        # A fresh output namespace per repetition: the host's consumer group starts at offset 0 again.
        output, raw_output = f"{prefix}out{repeat}.", f"{prefix}raw{repeat}."
        for namespace in (output, raw_output):
            ensure_topics(admin, layout, namespace)
            register_all(client, namespace)
        for name in args.processors:
            for kind in ("host", "raw"):

                def measure(
                    kind: str = kind, name: str = name, output: str = output, raw: str = raw_output
                ) -> dict[str, Any]:
                    with common.CpuWindow(guard.roots, loadgen="bench") as cpu:
                        if kind == "host":
                            out = host_run(name, client, inputs, output, args.batch_ms, args.grace_ms)
                        else:
                            out = raw_run(name, client, inputs, raw)
                    return out | {"cpu": cpu.result}

                out = guard.run(f"{name} {kind}", measure)
                runs.setdefault(name, {}).setdefault(kind, []).append(out)
                common.log(
                    f"  [{repeat + 1}/{args.repeat}] {name:<22} {kind:<4} {out['records']:>9,} records in "
                    f"{out['seconds']:6.2f} s = {out['per_s']:>9,.0f}/s, {out['outputs']:,} outputs; "
                    f"cpu bench {out['cpu']['loadgen']:.2f} kafka {out['cpu'].get('kafka', 0):.2f} "
                    f"other {out['cpu']['other']:.2f}"
                )
    summary: dict[str, Any] = {}
    for name, kinds in runs.items():
        host, raw = kinds["host"], kinds["raw"]
        summary[name] = {
            "records": inputs.records[name],
            "host_per_s": common.spread([r["per_s"] for r in host]),
            "raw_per_s": common.spread([r["per_s"] for r in raw]),
            "host_outputs": host[0]["outputs"],
            "raw_outputs": raw[0]["outputs"],
            "host_seconds": common.spread([r["seconds"] for r in host]),
            "host_commits": common.spread([r["commits"] for r in host]),
            # of host_seconds, waiting for input while the merger held records (grace periods, a slower input)
            "host_held_wait_s": common.spread([r["held_wait_s"] for r in host]),
            "raw_us_per_record": {
                part: statistics.median(r["us_per_record"][part] for r in raw) for part in raw[0]["us_per_record"]
            },
            # CPU of this process over the timed loop alone (first record to the end), per record
            "host_cpu_us_per_record": statistics.median(1e6 * r["cpu_s"] / r["records"] for r in host),
            "raw_cpu_us_per_record": statistics.median(1e6 * r["cpu_s"] / r["records"] for r in raw),
            "cpu_host": {k: statistics.median(r["cpu"][k] for r in host) for k in host[0]["cpu"]},
            "cpu_raw": {k: statistics.median(r["cpu"][k] for r in raw) for k in raw[0]["cpu"]},
        }
        summary[name]["host_vs_raw"] = common.ratio(
            summary[name]["host_per_s"]["median"], summary[name]["raw_per_s"]["median"]
        )
    return {"processors": summary, "runs": runs}


# --- latency: a live risk worker ----------------------------------------------------------------------------------


class Visibility:
    """A read_committed consumer noting when each order's record (orders) and decision (orders.checked) appear."""

    def __init__(self, client: Any, namespace: str) -> None:
        from schemas.serde import EventDeserializer
        from streams import kafka
        from streams.settings import KafkaSettings

        self._decoders = {
            namespace + t: EventDeserializer(client, t, topic_prefix=namespace) for t in ("orders", "orders.checked")
        }
        self._orders = namespace + "orders"
        # Fetch as soon as anything is there: the consumer's own wait must not add to what is measured.
        self._consumer = kafka.consumer(KafkaSettings(), f"{namespace}visibility", **{"fetch.wait.max.ms": 5})
        self._consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_END)
                for topic in self._decoders
                for p in self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
            ]
        )
        self.placed: dict[str, float] = {}  # order id -> visible on orders
        self.decided: dict[str, tuple[float, str]] = {}  # order id -> (visible on orders.checked, decision)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="visibility", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        perf = time.perf_counter
        while not self._stop.is_set():
            # Wait for the first record only: consume(n, timeout) waits out its timeout for a full batch, which added
            # 0-50 ms to every figure here (a probe at 1,000/s on the local broker: p50 30 ms that way, 5.5 ms this).
            first = self._consumer.poll(0.05)
            if first is None:
                continue
            batch = [first, *self._consumer.consume(1000, 0)]
            seen = perf()
            for msg in batch:
                if msg.error() is not None:
                    continue
                event = self._decoders[msg.topic()].deserialize(msg.value())
                order_id = getattr(event, "order_id", None)
                if order_id is None:
                    continue
                if msg.topic() == self._orders:
                    self.placed[order_id] = seen
                else:
                    self.decided[order_id] = (seen, type(event).__name__)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._consumer.close()


class OrderFlow:
    """OrderPlaced events built as the API builds them, over 100 accounts, near the latest tick's prices."""

    def __init__(self, client: Any, namespace: str, tag: str) -> None:
        from domain.instruments import InstrumentRegistry
        from schemas.serde import EventSerializer
        from streams import kafka
        from streams.settings import KafkaSettings

        self.instruments = InstrumentRegistry.from_file()
        self.producer = kafka.producer(KafkaSettings())
        self.orders = EventSerializer(client, "orders", topic_prefix=namespace)
        self.ticks = EventSerializer(client, "ticks", topic_prefix=namespace)
        self.tag = tag
        self.sequence = 0
        self.issued = 0
        self.bid = Decimal("39432.99")

    def tick(self) -> None:
        """A fresh tick (event time now) so risk has a current reference price."""
        from commands import decide
        from commands.models import IngestTicks
        from streams.host.processor import event_time_ms

        self.sequence += 1
        now = datetime.now(UTC)
        command = IngestTicks.model_validate(
            {
                "source": "bench",
                "ticks": [
                    {
                        "instrument": INSTRUMENT,
                        "bid": str(self.bid),
                        "ask": str(self.bid + Decimal("0.63")),
                        "bid_size": "1.5",
                        "ask_size": "0.8",
                        "exchange_ts": now.isoformat(),
                    }
                ],
            }
        )
        [event] = decide.ingest_ticks(
            command, self.instruments, {INSTRUMENT: self.sequence}, decide.Stamp(now, "bench")
        )
        self.producer.produce(
            self.ticks.topic, self.ticks.serialize(event), self.ticks.key(event), timestamp=event_time_ms(event)
        )
        self.producer.flush(30)

    def order(self, at: datetime) -> tuple[str, bytes, bytes, int]:
        """The next order, placed at ``at``: (order id, value, key, timestamp)."""
        from commands import decide
        from commands.models import PlaceOrder
        from streams.host.processor import event_time_ms

        n = self.issued
        self.issued += 1
        buy = n % 2 == 0
        command = PlaceOrder(
            account_id=f"LAT-{n % 100:03d}",
            client_order_id=f"{self.tag}-{n}",
            instrument=INSTRUMENT,
            side="BUY" if buy else "SELL",
            order_type="LIMIT",
            time_in_force="GTC",
            quantity=Decimal("0.001"),
            limit_price=self.bid - Decimal(n % 50) / 100 if buy else self.bid + Decimal("0.63") + Decimal(n % 50) / 100,
        )
        event = decide.place_order(command, decide.Stamp(at, f"{self.tag}-{n}"))
        return event.order_id, self.orders.serialize(event), self.orders.key(event), event_time_ms(event)


def paced(flow: OrderFlow, seen: Visibility, rate: int, duration: float) -> dict[str, Any]:
    """Orders at a constant rate for ``duration``; per order, produce → visible on orders and on orders.checked."""
    count = int(rate * duration)
    # Built and encoded beforehand (not in the paced loop, which shares this process with the visibility consumer),
    # each stamped with the moment it is due: risk reads event time (rate limits, the reference price's age).
    begin = datetime.now(UTC) + timedelta(seconds=0.5 + count * 0.0004)
    orders = [flow.order(begin + timedelta(seconds=i / rate)) for i in range(count)]
    time.sleep(max(0.0, (begin - datetime.now(UTC)).total_seconds()))
    sent: dict[str, float] = {}
    perf = time.perf_counter
    topic = flow.orders.topic
    start = perf()
    i = 0
    while i < count:
        due = min(count, int((perf() - start) * rate) + 1)
        while i < due:
            order_id, value, key, stamp = orders[i]
            sent[order_id] = perf()
            flow.producer.produce(topic, value, key, timestamp=stamp)
            flow.producer.poll(0)
            i += 1
        time.sleep(0.0005)
    sent_s = perf() - start
    flow.producer.flush(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(o in seen.decided for o in sent):
        time.sleep(0.05)
    placed = np.array([seen.placed[o] - t for o, t in sent.items() if o in seen.placed])
    decided = [(seen.decided[o][0] - t, seen.decided[o][1]) for o, t in sent.items() if o in seen.decided]
    kinds: dict[str, int] = {}
    for _, kind in decided:
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "sent": count,
        "achieved_per_s": count / sent_s,
        "decided": len(decided),
        "missing": count - len(decided),
        "decisions": kinds,
        "risk": common.percentiles_ms(np.array([d for d, _ in decided])),
        "raw": common.percentiles_ms(placed),
    }


def latency_phase(
    args: argparse.Namespace, client: Any, guard: common.Guard, prefix: str, run_dir: Path, admin: Any, layout: Any
) -> dict[str, Any]:
    from schemas.serde import register_all
    from streams.kafka.topics import ensure_topics

    results: dict[str, Any] = {}
    for batch_ms in args.latency_batch_ms:
        namespace = f"{prefix}lat{batch_ms}."
        ensure_topics(admin, layout, namespace)
        register_all(client, namespace)
        flow = OrderFlow(client, namespace, f"lat{batch_ms}{secrets.token_hex(2)}")
        flow.tick()
        seen = Visibility(client, namespace)
        env = {**os.environ, "TRADECORE_TOPIC_PREFIX": namespace}
        worker_log = run_dir / f"worker-risk-batch{batch_ms}.log"
        common.log(f"starting `tradecore worker risk --batch-ms {batch_ms}` over {namespace}")
        proc = launch.start(
            "worker", ["worker", "risk", "--batch-ms", str(batch_ms)], worker_log, env, own_session=True
        ).process
        guard.roots["worker"] = [proc.pid]
        try:
            # Ready once a first order's decision is visible (group joined, state rebuilt, reference price read).
            deadline = time.monotonic() + 180
            warm = paced(flow, seen, 10, 1.0)
            while warm["missing"] and time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise common.BenchError(f"the risk worker exited ({proc.returncode}); see {worker_log}")
                warm = paced(flow, seen, 10, 1.0)
            if warm["missing"]:
                raise common.BenchError(f"the risk worker decided nothing within 180 s; see {worker_log}")
            runs: dict[str, list[dict[str, Any]]] = {}
            for repeat in range(args.repeat):
                for load in args.loads:

                    def measure(load: int = load, flow: OrderFlow = flow, seen: Visibility = seen) -> dict[str, Any]:
                        flow.tick()  # reference prices stay fresh (risk refuses stale ones)
                        with common.CpuWindow(guard.roots, loadgen="bench") as cpu:
                            out = paced(flow, seen, load, args.latency_duration)
                        return out | {"cpu": cpu.result}

                    out = guard.run(f"latency {load}/s batch {batch_ms} ms", measure)
                    runs.setdefault(str(load), []).append(out)
                    common.log(
                        f"  [{repeat + 1}/{args.repeat}] batch {batch_ms} ms, {load}/s: decision visible p50 "
                        f"{common.fmt(out['risk']['p50_ms'], 1)} p99 {common.fmt(out['risk']['p99_ms'], 1)} p99.9 "
                        f"{common.fmt(out['risk']['p999_ms'], 1)} ms; "
                        f"raw record p99 {common.fmt(out['raw']['p99_ms'], 1)} ms; "
                        f"{out['decisions']}, missing {out['missing']}; cpu worker {out['cpu'].get('worker', 0):.2f}"
                    )
        finally:
            guard.roots.pop("worker", None)
            launch.stop(proc)
            seen.close()
        results[str(batch_ms)] = {
            str(load): {
                "risk": {
                    k: common.spread([r["risk"][k] for r in rs]) for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")
                },
                "raw": {k: common.spread([r["raw"][k] for r in rs]) for k in ("p50_ms", "p99_ms", "p999_ms", "max_ms")},
                "achieved_per_s": common.spread([r["achieved_per_s"] for r in rs]),
                "missing": sum(r["missing"] for r in rs),
                "decisions": {k: sum(r["decisions"].get(k, 0) for r in rs) for k in rs[0]["decisions"]},
                "worker_cpu": common.spread([r["cpu"].get("worker") for r in rs]),
                "worker_cpu_ms_per_order": common.spread([1000 * r["cpu"].get("worker", 0) / int(load) for r in rs]),
                "cpu": {k: statistics.median(r["cpu"][k] for r in rs) for k in rs[0]["cpu"]},
            }
            for load, rs in runs.items()
        }
    return results


# --- the run ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    names = lambda text: [x.strip() for x in text.split(",") if x.strip()]  # noqa: E731
    parser.add_argument("--orders", type=int, default=None, help="orders in the trading session (default 20,000)")
    parser.add_argument("--ticks", type=int, default=None, help="market ticks for signals (default: all, ≈ 190,000)")
    parser.add_argument("--processors", type=names, default=list(PROCESSORS), help="which to measure (default all)")
    parser.add_argument("--batch-ms", type=int, default=100, help="the hosts' batch_ms in the throughput runs")
    parser.add_argument("--grace-ms", type=int, default=300, help="the hosts' grace_ms in the throughput runs")
    parser.add_argument(
        "--phases", type=names, default=["throughput", "latency"], help="throughput, latency or both (default)"
    )
    parser.add_argument("--loads", type=ints, default=None, help="offered orders/s for latency (default 100,500,1000)")
    parser.add_argument(
        "--latency-batch-ms", type=ints, default=None, help="the risk worker's --batch-ms values (default 100,10)"
    )
    parser.add_argument("--latency-duration", type=float, default=None, help="seconds per latency load (default 10)")
    common.add_run_options(
        parser, quick="smoke run (≤ 3 min): 1 repetition, small inputs", limit=0.5, retries=0, wait_s=None
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeat = args.repeat or (1 if quick else 3)
    args.orders = args.orders or (5_000 if quick else 20_000)
    args.ticks = args.ticks or (30_000 if quick else 10**9)
    args.loads = args.loads or ([1000] if quick else [100, 500, 1000])
    args.latency_batch_ms = args.latency_batch_ms or [100, 10]
    args.latency_duration = args.latency_duration or (4.0 if quick else 10.0)
    args.quiet_wait = args.quiet_wait if args.quiet_wait is not None else (3.0 if quick else 5.0)
    unknown = [n for n in args.processors if n not in PROCESSORS]
    if unknown:
        parser.error(f"unknown processor(s) {', '.join(unknown)}; known: {', '.join(PROCESSORS)}")
    if args.repeat < 1 or args.orders < 1 or args.ticks < 1 or min(args.loads) < 1 or min(args.latency_batch_ms) < 1:
        parser.error("--repeat, --orders, --ticks, --loads and --latency-batch-ms must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.chdir(common.ROOT)  # settings read .stack/env relative to the working directory
    run_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
    prefix = f"bench-{run_id}."
    run_dir = common.RESULTS / f"processors-{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    stack_roots = common.check_stack()
    common.log(f"run {run_id}: topic prefix {prefix!r}, scratch in {run_dir.relative_to(common.ROOT)}")
    os.environ["TRADECORE_TOPIC_PREFIX"] = prefix
    os.environ["TRADECORE_STRATEGY_ACCOUNTS"] = strategy_accounts()

    from schemas.serde import register_all
    from schemas.settings import RegistrySettings
    from streams import kafka
    from streams.kafka.registry import registry_client
    from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
    from streams.settings import KafkaSettings

    settings = KafkaSettings()
    admin = kafka.admin(settings)
    layout = TopicLayout.for_cluster(cluster_size(admin), settings.partitions)
    client = registry_client(RegistrySettings())
    trade, market = f"{prefix}trade.", f"{prefix}market."
    for namespace in (trade, market):
        ensure_topics(admin, layout, namespace)
        register_all(client, namespace)
    results: dict[str, Any] = {
        "benchmark": "streams",
        "run_id": run_id,
        "config": {
            "repeat": args.repeat,
            "orders": args.orders,
            "processors": args.processors,
            "batch_ms": args.batch_ms,
            "grace_ms": args.grace_ms,
            "loads": args.loads,
            "latency_batch_ms": args.latency_batch_ms,
            "latency_duration_s": args.latency_duration,
            "topic_prefix": prefix,
            "partitions": layout.partitions,
            "replication_factor": layout.replication_factor,
            "host": "streams.host.runner.ProcessorHost in this process (a thread), batch_ms and grace_ms as given",
            "raw": "read_committed Consumer -> InputDecoder (batch) -> processor.handle (signals: each partition's run "
            "as a frame -> handle_frame) -> EventSerializer -> idempotent Producer (acks=all, lz4, linger 2 ms), "
            "no transactions, consume order",
            "latency_worker": "tradecore worker risk (a process), --batch-ms per setting",
            "quick": args.quick,
        },
        "machine": common.machine(),
    }
    guard = common.Guard(dict(stack_roots), args.quiet_limit, args.quiet_wait, args.retries)
    try:
        results["throughput"] = {"processors": {}, "runs": {}}
        results["latency"] = {}
        if "throughput" in args.phases:
            inputs = write_inputs(args, client, trade, market)
            results["inputs"] = {"records": inputs.records, "written": inputs.written}
            common.log("throughput: each processor's host, then the raw loop, over the same input log")
            results["throughput"] = throughput_phase(args, client, inputs, guard, prefix, admin, layout)
        if "latency" in args.phases:
            common.log("latency: a live risk worker, orders at constant rates")
            results["latency"] = latency_phase(args, client, guard, prefix, run_dir, admin, layout)
        results["disturbed_measurements_kept"] = guard.disturbed
    finally:
        if not args.keep:
            common.cleanup(prefix)
    verdict(results)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return results


# --- the verdict and the table ------------------------------------------------------------------------------------


def verdict(results: dict[str, Any]) -> None:
    processors = results["throughput"]["processors"]
    latency = results["latency"]
    targets: dict[str, Any] = {}
    for name, p in processors.items():
        targets[f"{name}_vs_raw"] = {
            "target": TARGET_VS_RAW,
            "measured": p["host_vs_raw"],
            "met": None if p["host_vs_raw"] is None else p["host_vs_raw"] >= TARGET_VS_RAW,
        }
    if "signals" in processors:
        measured = processors["signals"]["host_per_s"]["median"]
        targets["signals_ticks_per_s"] = {
            "target": TARGET_SIGNALS_TICKS_PER_S,
            "measured": measured,
            "met": measured >= TARGET_SIGNALS_TICKS_PER_S,
        }
    for batch_ms, loads in latency.items():
        p99 = loads.get("1000", {}).get("risk", {}).get("p99_ms", {}).get("median")
        targets[f"p99_ms_at_1000_batch_{batch_ms}"] = {
            "target": TARGET_P99_MS_AT_1000,
            "measured": p99,
            "met": None if p99 is None else p99 <= TARGET_P99_MS_AT_1000,
        }
    results["targets"] = targets


def _cpu(cpu: dict[str, float]) -> str:
    names = {"loadgen": "bench", "worker": "worker", "kafka": "kafka", "registry": "registry", "other": "other"}
    return " ".join(f"{label} {cpu[key]:.2f}" for key, label in names.items() if key in cpu)


def table(results: dict[str, Any]) -> str:
    fmt, fmt_ms, fmt_spread = common.fmt, common.fmt_ms, common.fmt_spread
    cfg = results["config"]
    m = results["machine"]
    lines = [
        f"streams run {results['run_id']}: {cfg['repeat']} repetition(s), median (min-max); {m['cpus']} CPUs, "
        f"{m['cpu_model']}",
        "CPU in cores (1.00 = one core busy); 'bench' = this process (the in-process host or raw loop, or the load "
        "generator and the visibility consumer); 'other' = processes outside the benchmark. "
        f"{results.get('disturbed_measurements_kept', 0)} measurement(s) kept although other processes disturbed them.",
        "",
        f"Throughput, input log from offset 0 (host: ProcessorHost in-process, batch_ms {cfg['batch_ms']}, grace_ms "
        f"{cfg['grace_ms']}; raw: "
        "consume → decode → handle → encode → produce, no transactions)",
        f"  {'processor':<22} {'records':>8} {'host/s':<24} {'raw/s':<24} {'host/raw':>8}  {'outputs h/r':<15} "
        f"{'raw µs/record: decode compute encode kafka+loop':<48} {'host held s':>11}  "
        f"{'CPU µs/record h/r':<18} cpu over the host's measurement, set-up included",
    ]
    for name, p in results["throughput"]["processors"].items():
        us = p["raw_us_per_record"]
        lines.append(
            f"  {name:<22} {p['records']:>8,} {fmt_spread(p['host_per_s']):<24} {fmt_spread(p['raw_per_s']):<24} "
            f"{fmt(p['host_vs_raw'], 2):>8}  {p['host_outputs']:>6,}/{p['raw_outputs']:<8,} "
            f"{us['decode']:>14.1f} {us['compute']:>7.1f} {us['encode']:>6.1f} {us['kafka_and_loop']:>10.1f}"
            f"{'':<8} {fmt(p['host_held_wait_s']['median'], 2):>11}  "
            f"{p['host_cpu_us_per_record']:>7.1f}/{p['raw_cpu_us_per_record']:<10.1f} {_cpu(p['cpu_host'])}"
        )
    for batch_ms, loads in results["latency"].items():
        lines += [
            "",
            f"Latency, tradecore worker risk --batch-ms {batch_ms}: produce → visible to a read_committed consumer",
            f"  {'offered/s':>9} {'sent/s':>7}  {'decision p50 ms':<18} {'p99 ms':<18} {'p99.9 ms':<18} "
            f"{'raw record p50':<15} {'raw p99':<15} {'missing':>7}  worker ms CPU/order  cpu",
        ]
        for load, v in loads.items():
            lines.append(
                f"  {int(load):>9} {fmt(v['achieved_per_s']['median']):>7}  {fmt_ms(v['risk']['p50_ms']):<18} "
                f"{fmt_ms(v['risk']['p99_ms']):<18} {fmt_ms(v['risk']['p999_ms']):<18} "
                f"{fmt_ms(v['raw']['p50_ms']):<15} {fmt_ms(v['raw']['p99_ms']):<15} {v['missing']:>7}  "
                f"{fmt_spread(v['worker_cpu_ms_per_order'], 2):<19} {_cpu(v['cpu'])}"
            )
    lines += ["", "Issue targets", *common.target_lines(results["targets"], width=32)]
    return "\n".join(lines)


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The figures without the individual runs."""
    return {k: v for k, v in results.items() if k != "throughput"} | {"throughput": results["throughput"]["processors"]}


def main(argv: list[str] | None = None) -> int:
    from streams.runtime import tune_collector

    tune_collector()  # as every tradecore process does
    args = parse_args(argv)
    return common.report(lambda: run(args), table, compact)


if __name__ == "__main__":
    sys.exit(main())
