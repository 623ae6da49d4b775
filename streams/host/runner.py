"""Run a processor exactly once over Kafka.

Each batch is one Kafka transaction holding the batch's outputs, its dead letters and the input offsets it
consumed, so a crash anywhere leaves no duplicate and no gap for ``read_committed`` readers. A batch is committed
as soon as the input goes idle (a pass finds nothing more to take), else after ``batch_ms`` or ``batch_max``
records: a lone record's outputs are visible at once, a backlog is taken in large transactions. The processor's
state lives only in memory: on (re)assignment the host replays the inputs from the beginning up to the committed offsets
— the log is the store.

The order of a replay: live, a processor with several inputs interleaves them by event time (``streams.host.merge``),
but when an input lags (an upstream processor catching up) live order can differ from the event-time order a replay
would take. So each transaction also writes, to the processor's journal topic, the order it took its records in —
runs of (topic, partition, count) — and a rebuild follows the journal: the state it rebuilds is the state that
wrote the committed outputs, whatever order that was. Records the journal does not cover are taken by event time.

Transaction failures: a retriable commit error is retried (never aborted: after a timeout the outcome is unknown);
one that requires an abort is aborted; either way, if the transaction cannot be settled the host drops producer,
consumer and state, and starts over from the committed offsets with a new producer — whose ``init_transactions``
fences the old one and settles its transaction.

One instance per processor when it has broadcast inputs: their positions are committed in the processor's group.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Status, StatusCode

from schemas.contract_errors import EventDecodeError
from schemas.events import Event
from schemas.serde import EventDeserializer, EventSerializer
from streams import kafka
from streams.host.merge import Merger, Source, Stamped
from streams.host.processor import Forward, Output, Processor, event_time_ms
from streams.kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaSettings,
    Message,
    SchemaRegistryClient,
    TopicPartition,
    tracing,
)
from streams.kafka.logreader import LogReader, RawRecord
from streams.kafka.transactions import TransactionalProducer, TransactionUnsettled
from streams.metrics import ProcessorMetrics, observe_output

log = logging.getLogger("tradecore.streams")

# Internal topics carry another topic's events unchanged.
EVENTS_OF = {"executions.by-account": "executions"}


# Waiting for input: with nothing buffered, up to _IDLE_WAIT_S (a poll returns on the first record); with records
# held by the merger, _HELD_WAIT_S, so that a grace period ending is noticed promptly; on each of two consumers in
# turns of _TURN_S, so that a record on either is noticed within that.
_IDLE_WAIT_S = 0.05
_HELD_WAIT_S = 0.005
_TURN_S = 0.005


class _StartOver(Exception):
    """The current transaction could not be settled: rebuild from the committed offsets."""


@dataclass(frozen=True)
class HostConfig:
    """How a processor is hosted."""

    instance: str = "0"  # stable per deployment slot: the transactional id derives from it (fencing of zombies)
    input_prefix: str | None = None  # namespace of the inputs; default KafkaSettings.topic_prefix
    output_prefix: str | None = None  # namespace of outputs, consumer group and transactional id; default as above
    batch_max: int = 2000  # records per transaction at most
    batch_ms: int = 100  # and at most this long open while records keep coming; an idle input commits at once
    grace_ms: int = 300  # how long a partitioned input must sit at the end of its log before the others go on
    broadcast_grace_ms: int = 0  # the same for broadcast inputs (reference data: ticks never hold an order back)
    # (a broadcast record itself waits for no grace period: it is taken once the others have nothing more fetched)


@dataclass
class HostStats:
    consumed: int = 0
    produced: int = 0
    dead_lettered: int = 0
    commits: int = 0
    restarts: int = 0
    replayed: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


class ProcessorHost:
    def __init__(
        self,
        processor: Processor,
        settings: KafkaSettings,
        registry: SchemaRegistryClient,
        config: HostConfig | None = None,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.config = config or HostConfig()
        self.inputs = settings.topic_prefix if self.config.input_prefix is None else self.config.input_prefix
        self.outputs = settings.topic_prefix if self.config.output_prefix is None else self.config.output_prefix
        self.group = f"{self.outputs}{processor.name}"
        self.stats = HostStats()
        self.metrics = ProcessorMetrics(processor.name, self.inputs, self.outputs)
        self._registry = registry
        topics = processor.partitioned + processor.broadcast
        self._rank = {self.inputs + t: i for i, t in enumerate(topics)}
        self._topics = [self.inputs + t for t in topics]
        self._broadcast_ranks = frozenset(range(len(processor.partitioned), len(topics)))
        self._decoders = {
            self.inputs + t: EventDeserializer(registry, EVENTS_OF.get(t, t), topic_prefix=self.inputs) for t in topics
        }
        self._encoders: dict[str, EventSerializer] = {}
        # Only several inputs leave a choice of order to remember.
        self.journal = f"{self.outputs}{processor.name}.journal" if len(topics) > 1 else None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, on_idle: Callable[[], None] | None = None) -> None:
        """Process until ``stop`` is set; commits what is in flight before returning."""
        while not stop.is_set():
            try:
                self._session(stop, on_idle)
            except _StartOver as why:
                self.stats.restarts += 1
                self.metrics.restarted()
                log.warning("%s: starting over from the committed offsets: %s", self.processor.name, why)

    def _session(self, stop: threading.Event, on_idle: Callable[[], None] | None) -> None:
        self._producer = self._new_producer()
        self._consumer = kafka.consumer(
            self.settings,
            self.group,
            **{
                "partition.assignment.strategy": "range",
                "auto.offset.reset": "earliest",
                # Static membership: a restarted instance takes its partitions back at once instead of waiting
                # for the killed one's session to time out.
                "group.instance.id": f"{self.group}-{self.config.instance}",
                "session.timeout.ms": 15000,
            },
        )
        self._broadcast: Consumer | None = None
        self._merger = self._new_merger(set())
        self._in_txn = False
        self._staged: dict[tuple[str, int], int] = {}
        self._runs: list[list[Any]] = []  # the current transaction's journal: [topic, partition, count] runs
        self._rebuild_due = False
        self._starts: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._lag_due = 0.0
        self._tracing = tracing.recording()
        self._idle_since: dict[Source, float] = {}
        self._asked_high: dict[tuple[str, int], tuple[float, int]] = {}
        self._consumer.subscribe(
            [self.inputs + t for t in self.processor.partitioned], on_assign=self._assigned, on_revoke=self._revoked
        )
        try:
            opened = time.monotonic()
            while not stop.is_set():
                messages = self._fetch(self._wait_s())
                for msg in messages:
                    if msg.error() is None and msg.topic() in self._rank:
                        self._merger.add(self._stamped(RawRecord.of(msg)))
                processed = in_batch = 0
                for stamped in self._merger.release(self._exhausted, self._caught_up):
                    if not self._in_txn:
                        self._producer.begin()
                        self._in_txn, opened, in_batch = True, time.monotonic(), 0
                    self._process(stamped.item, live=True)
                    processed += 1
                    in_batch += 1
                    if in_batch >= self.config.batch_max:
                        self._commit()  # bounded transactions; the merger keeps the rest in order
                # Commit once the input goes idle (nothing more was there to take) — what is processed becomes
                # visible at once — or when the batch has been open batch_ms while records keep coming.
                if self._in_txn and (not messages or time.monotonic() - opened > self.config.batch_ms / 1000):
                    self._commit()
                self._observe_lag()
                if not messages and not processed and on_idle is not None:
                    on_idle()
            if self._in_txn:
                self._commit()
        finally:
            self._consumer.close()
            if self._broadcast is not None:
                self._broadcast.close()
            self._producer.close()

    def _wait_s(self) -> float:
        """How long the next fetch may wait for a first record."""
        if self._in_txn:
            return 0.0  # records came in the last pass: take what else is there, or commit
        if self._merger.buffered():
            return _HELD_WAIT_S  # records wait on a grace period: look again soon
        return _IDLE_WAIT_S

    def _fetch(self, wait_s: float) -> list[Message]:
        """Every record both consumers hold now; if there is none, wait up to ``wait_s`` for the first to arrive.

        Never waits while anything is there (consume() would wait out its timeout for a full batch). librdkafka
        cannot wait on two consumers at once, so with a broadcast consumer each is waited on in short turns.
        """
        deadline = time.monotonic() + wait_s
        first: list[Message] = []
        while True:
            assigned_before = self._rebuild_due
            messages = list(self._consumer.consume(self.config.batch_max, 0))
            if assigned_before or not self._rebuild_due:
                # A record polled before this consume() assigned anew is dropped: it comes again from the committed
                # offsets. What the consumer returned after an assignment starts there: keep it.
                messages = first + messages
            if self._rebuild_due:
                self._rebuild()
            if self._broadcast is not None:
                messages += self._broadcast.consume(self.config.batch_max, 0)
            left = deadline - time.monotonic()
            if messages or left <= 0:
                return messages
            turn = left if self._broadcast is None else min(left, _TURN_S)
            polled = self._consumer.poll(turn)
            first = [] if polled is None else [polled]
            if first or self._rebuild_due or self._broadcast is None:
                continue  # drain the rest (and rebuild first if the assignment changed)
            polled = self._broadcast.poll(min(max(deadline - time.monotonic(), 0.0), _TURN_S))
            if polled is not None:
                return [polled, *self._broadcast.consume(self.config.batch_max, 0)]

    def _new_producer(self) -> TransactionalProducer:
        return TransactionalProducer(
            self.settings,
            f"{self.group}-{self.config.instance}",
            self.processor.name,
            **{
                "transaction.timeout.ms": 60000,
                "linger.ms": 2,
                # After a commit the next transaction's first request is refused (CONCURRENT_TRANSACTIONS) until the
                # broker has written the commit markers, usually within a few ms: retried after the default 100 ms,
                # that wait was the largest part of the host's p99 at 1,000 orders/s (docs/PERFORMANCE.md).
                "retry.backoff.ms": 5,
            },
        )

    # -- rebalancing and rebuilding --------------------------------------------------------------------------------
    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment = [(p.topic, p.partition) for p in partitions]
        self._rebuild_due = True

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._in_txn:
            self._commit()
        self._merger = self._new_merger(set())

    def _rebuild(self) -> None:
        """Fold the inputs from the beginning up to the committed offsets into fresh state, then go live."""
        self._rebuild_due = False
        self.processor.reset()
        broadcast = [
            (self.inputs + t, p)
            for t in self.processor.broadcast
            for p in self._consumer.list_topics(self.inputs + t, timeout=30).topics[self.inputs + t].partitions
        ]
        owned = self._assignment + broadcast
        committed = self._consumer.committed([TopicPartition(t, p) for t, p in owned], timeout=30)
        stops = {(c.topic, c.partition): max(c.offset, 0) for c in committed}
        sources = {(self._rank[t], p) for t, p in owned}
        self._starts = stops
        self._committed = dict(stops)
        self.metrics.forget_lag()
        replayed = self._replay(stops, sources)
        self.stats.replayed += replayed
        self.metrics.replayed(replayed)
        self._merger = self._new_merger(sources)
        if self._broadcast is not None:
            self._broadcast.close()
            self._broadcast = None
        if broadcast:
            self._broadcast = kafka.consumer(self.settings, f"{self.group}-broadcast-{self.config.instance}")
            self._broadcast.assign([TopicPartition(t, p, stops[(t, p)]) for t, p in broadcast])
        log.info("%s: rebuilt state from %d records; live from %s", self.processor.name, replayed, stops)

    def _replay(self, stops: dict[tuple[str, int], int], sources: set[Source]) -> int:
        """Fold every record below ``stops`` into the state: in the journal's order, then the rest by event time."""
        wanted = {tp: stop for tp, stop in stops.items() if stop > 0}
        if not wanted:
            return 0
        reader = LogReader(self.settings, f"{self.group}-replay-{self.config.instance}")
        reader.assign(dict.fromkeys(wanted, OFFSET_BEGINNING))
        batches = reader.read(wanted, max_records=self.config.batch_max)
        buffers: dict[tuple[str, int], deque[RawRecord]] = {tp: deque() for tp in wanted}
        count = 0
        try:
            for tp, runs in self._journal(set(wanted)):
                for _ in range(runs):
                    while not buffers[tp]:
                        if reader.finished(tp):
                            raise _StartOver(f"the journal goes past the committed offset of {tp[0]}[{tp[1]}]")
                        for record in next(batches, []):
                            buffers[(record.topic, record.partition)].append(record)
                    self._process(buffers[tp].popleft(), live=False)
                    count += 1
            merger = self._new_merger(sources)
            for buffer in buffers.values():
                for record in buffer:
                    merger.add(self._stamped(record))
            while True:
                for stamped in merger.release(lambda source: reader.finished((self._topics[source[0]], source[1]))):
                    self._process(stamped.item, live=False)
                    count += 1
                batch = next(batches, None)
                if batch is None and merger.buffered() == 0:
                    return count
                for record in batch or ():
                    merger.add(self._stamped(record))
        finally:
            reader.close()

    def _journal(self, owned: set[tuple[str, int]]) -> Iterator[tuple[tuple[str, int], int]]:
        """The committed journal's runs over ``owned`` partitions, in the order they were processed."""
        if self.journal is None:
            return
        reader = LogReader(self.settings, f"{self.group}-journal-{self.config.instance}")
        try:
            position = (self.journal, 0)
            # Everything committed before this rebuild began lies below the high watermark (read_committed steps
            # over the markers and aborted records up to there).
            high = reader.ends([position])[position]
            reader.assign({position: OFFSET_BEGINNING})
            for batch in reader.read({position: high}, max_records=self.config.batch_max):
                for record in batch:
                    for topic, partition, runs in json.loads(record.value or b"[]"):
                        key = (self.inputs + topic, partition)
                        if key in owned:
                            yield key, runs
        finally:
            reader.close()

    def _new_merger(self, sources: set[Source]) -> Merger[RawRecord]:
        return Merger(sources, broadcast=self._broadcast_ranks)

    def _stamped(self, record: RawRecord) -> Stamped[RawRecord]:
        return Stamped(record.timestamp_ms, self._rank[record.topic], record.partition, record.offset, record)

    def _exhausted(self, source: Source) -> bool:
        """Live: the input has been at the end of its log for its grace period, so the others go on without it."""
        now = time.monotonic()
        if not self._caught_up(source):
            self._idle_since.pop(source, None)
            return False
        grace_ms = self.config.broadcast_grace_ms if source[0] in self._broadcast_ranks else self.config.grace_ms
        return now - self._idle_since.setdefault(source, now) >= grace_ms / 1000

    def _caught_up(self, source: Source) -> bool:
        """Everything the log holds for this input has been fetched (position() steps over commit markers)."""
        rank, partition = source
        topic = self._topics[rank]
        consumer = self._broadcast if topic[len(self.inputs) :] in self.processor.broadcast else self._consumer
        assert consumer is not None
        tp = TopicPartition(topic, partition)
        high = self._high_watermark(consumer, tp)
        [position] = consumer.position([tp])
        # Nothing fetched yet (an empty partition) leaves the position unset: it is where we started.
        at = position.offset if position.offset >= 0 else self._starts.get((topic, partition), 0)
        return high is not None and high >= 0 and at >= high

    def _high_watermark(self, consumer: Consumer, tp: TopicPartition) -> int:
        """The partition's end: librdkafka's cached value once a fetch reported it, else asked (and kept briefly)."""
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if high is not None and high >= 0:
            return int(high)
        key, now = (tp.topic, tp.partition), time.monotonic()
        known = self._asked_high.get(key)
        if known is None or now - known[0] > 0.25:
            _, asked = consumer.get_watermark_offsets(tp, timeout=5)
            known = self._asked_high[key] = (now, int(asked))
        return known[1]

    # -- processing ----------------------------------------------------------------------------------------------
    def _process(self, record: RawRecord, *, live: bool) -> None:
        topic = record.topic
        name = topic[len(self.inputs) :]
        # Live records continue the trace their producer started; a replay only rebuilds state, so it has none.
        consumed = record.headers if live else None
        span = (
            tracing.consuming(f"{self.processor.name} process {name}", consumed, record.partition, record.offset)
            if live and self._tracing
            else None
        )
        try:
            event: Event | None = self._decoders[topic].deserialize(record.value)
        except EventDecodeError as err:
            event, kind, reason = None, "undecodable", f"undecodable: {err}"
        outputs: Sequence[Output] = ()
        if event is not None:
            try:
                outputs = self.processor.handle(name, event)
                reason = ""
            except Exception as err:  # a record this processor cannot handle must not stop the pipeline
                kind = type(err).__name__
                reason = f"{kind}: {err}"
                log.warning(
                    "%s: dead-lettering %s[%d]@%d: %s",
                    self.processor.name,
                    topic,
                    record.partition,
                    record.offset,
                    reason,
                )
        for output in outputs:
            if not isinstance(output, Forward):
                observe_output(output, live=live)
        if live:
            self.stats.consumed += 1
            self.metrics.consumed(topic, record.timestamp_ms)
            self._staged[(topic, record.partition)] = record.offset + 1
            if self.journal is not None:
                if self._runs and self._runs[-1][0] == name and self._runs[-1][1] == record.partition:
                    self._runs[-1][2] += 1
                else:
                    self._runs.append([name, record.partition, 1])
            # What this record causes carries its trace on: in headers only, so payloads replay byte-identical.
            headers = tracing.handed_on(span, consumed)
            if reason:
                if span is not None:
                    span.set_status(Status(StatusCode.ERROR, reason))
                self._dead_letter(record, reason, kind, headers)
            for output in outputs:
                self._produce(output, record, headers)
            if span is not None:
                span.end()

    def _produce(self, output: Output, source: RawRecord, headers: tracing.KafkaHeaders | None) -> None:
        if isinstance(output, Forward):
            topic, key, value = self.outputs + output.topic, output.key.encode(), source.value
            timestamp = source.timestamp_ms
        else:
            route = output.route().topic
            encoder = self._encoders.get(route)
            if encoder is None:
                encoder = self._encoders[route] = EventSerializer(self._registry, route, topic_prefix=self.outputs)
            topic, key, value = encoder.topic, encoder.key(output), encoder.serialize(output)
            timestamp = event_time_ms(output)
        self._producer.send(topic, key, value, timestamp, headers)
        self.stats.produced += 1
        self.metrics.produced(topic)

    def _dead_letter(
        self, record: RawRecord, reason: str, kind: str, trace_headers: tracing.KafkaHeaders | None
    ) -> None:
        headers = [
            ("tradecore.source.topic", record.topic.encode()),
            ("tradecore.source.partition", str(record.partition).encode()),
            ("tradecore.source.offset", str(record.offset).encode()),
            ("tradecore.processor", self.processor.name.encode()),
            ("tradecore.reason", reason.encode()[:4000]),
            *(trace_headers or ()),
        ]
        self._producer.send(self.outputs + "deadletter", record.key, record.value, record.timestamp_ms, headers)
        self.stats.dead_lettered += 1
        self.metrics.dead_lettered(record.topic, kind)

    def _commit(self) -> None:
        if self.journal is not None and self._runs:
            self._producer.send(
                self.journal, None, json.dumps(self._runs, separators=(",", ":")).encode(), 0, partition=0
            )
        try:
            self._producer.commit(self._staged, self._consumer)
        except TransactionUnsettled as unsettled:
            if unsettled.aborted:
                self.metrics.transaction("aborted")
            raise _StartOver(str(unsettled)) from unsettled
        self._in_txn = False
        self._committed.update(self._staged)
        self._staged = {}
        self._runs = []
        self.stats.commits += 1
        self.metrics.transaction("committed")

    def _observe_lag(self) -> None:
        """Consumer lag per input partition, at most once a second: the log's end minus the committed offset."""
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + 1.0
        # Transactional inputs end in a commit marker past their last record: once everything fetched is handled
        # and committed, a partition fetched to its end has no lag, whatever the marker's offset.
        settled = not self._in_txn and self._merger.buffered() == 0
        for (topic, partition), committed in self._committed.items():
            consumer = self._broadcast if topic[len(self.inputs) :] in self.processor.broadcast else self._consumer
            if consumer is None:
                continue
            tp = TopicPartition(topic, partition)
            high = self._high_watermark(consumer, tp)
            if high < 0:
                continue
            behind = max(high - committed, 0)
            if behind and settled and consumer.position([tp])[0].offset >= high:
                behind = 0
            self.metrics.lag(topic, partition, behind)
