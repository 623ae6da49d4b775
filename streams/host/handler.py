"""One decoded input record through the processor: handled, and what it derives written to the open transaction.

Live, the outputs (or the record itself, dead-lettered with the reason, when it does not decode or the processor
cannot handle it) go into the host's transaction, carrying on the trace the record's producer started; in a
replay only the processor's state changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from opentelemetry.trace import Span, Status, StatusCode

from schemas.registry import SchemaRegistry
from schemas.serde import EventSerializer
from streams.host.config import HostStats
from streams.host.decoding import Decoded
from streams.host.inputs import Inputs
from streams.host.processor import Forward, Output, Processor, event_time_ms
from streams.host.tasks import Task
from streams.host.transaction import HostTransaction
from streams.kafka import tracing
from streams.kafka.logreader import RawRecord
from streams.metrics import ProcessorMetrics, observe_output

log = logging.getLogger("tradecore.streams")


class RecordHandler:
    """Applies ``processor`` to records of ``inputs``, writing to the ``outputs`` namespace."""

    def __init__(
        self,
        processor: Processor,
        inputs: Inputs,
        outputs: str,
        registry: SchemaRegistry,
        stats: HostStats,
        metrics: ProcessorMetrics,
    ) -> None:
        self._processor = processor
        self._inputs = inputs
        self._outputs = outputs
        self._registry = registry
        self._stats = stats
        self._metrics = metrics
        self._encoders: dict[str, EventSerializer] = {}
        self.tracing = False  # whether spans are recorded: the host asks at the start of each session

    def handle(self, decoded: Decoded, txn: HostTransaction | None, tasks: list[Task]) -> None:
        """Fold ``decoded`` into the state of ``tasks``; live (``txn`` given) write what it derives into ``txn``."""
        live = txn is not None
        record, event = decoded.record, decoded.event
        topic = record.topic
        name = self._inputs.name(topic)
        # Live records continue the trace their producer started; a replay only rebuilds state, so it has none.
        consumed = record.headers if live else None
        span = (
            tracing.consuming(f"{self._processor.name} process {name}", consumed, record.partition, record.offset)
            if live and self.tracing
            else None
        )
        kind, reason = ("undecodable", f"undecodable: {decoded.reason}") if event is None else ("", "")
        outputs: list[Output] = []
        if event is not None:
            for task in tasks:
                began = time.perf_counter()
                try:
                    outputs += task.processor.handle(name, event)
                except Exception as err:  # a record this processor cannot handle must not stop the pipeline
                    kind = type(err).__name__
                    reason = f"{kind}: {err}"
                task.work_s += time.perf_counter() - began  # (a replay of this record would redo it)
            if reason:
                self.failed(record, reason)
        self.observe(outputs, live)
        if txn is None:
            return
        self._stats.consumed += 1
        self._metrics.consumed(topic, record.timestamp_ms)
        txn.take(record, tasks)
        self.write(txn, record, outputs, reason, kind, span)

    def failed(self, record: RawRecord, reason: str) -> None:
        """Log that the processor could not handle ``record`` (it is dead-lettered)."""
        log.warning(
            "%s: dead-lettering %s[%d]@%d: %s",
            self._processor.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )

    @staticmethod
    def observe(outputs: Sequence[Output], live: bool) -> None:
        """What the outputs tell operators (``streams.metrics.observe_output``)."""
        for output in outputs:
            if not isinstance(output, Forward):
                observe_output(output, live=live)

    def write(
        self,
        txn: HostTransaction,
        record: RawRecord,
        outputs: Sequence[Output],
        reason: str,
        kind: str,
        span: Span | None = None,
    ) -> None:
        """Write into ``txn`` what the taken ``record`` derived: its outputs — or, given ``reason``, the record itself,
        dead-lettered with it — carrying on the trace of ``span`` or, without one, the record's own."""
        # What this record causes carries its trace on: in headers only, so payloads replay byte-identical.
        headers = tracing.handed_on(span, record.headers)
        if reason:
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, reason))
            self._dead_letter(txn, record, reason, kind, headers)
        for output in outputs:
            self._produce(txn, output, record, headers)
        if span is not None:
            span.end()

    def _produce(
        self, txn: HostTransaction, output: Output, source: RawRecord, headers: tracing.KafkaHeaders | None
    ) -> None:
        if isinstance(output, Forward):
            topic, key, value = self._outputs + output.topic, output.key.encode(), source.value
            timestamp = source.timestamp_ms
        else:
            route = output.route().topic
            encoder = self._encoders.get(route)
            if encoder is None:
                encoder = self._encoders[route] = EventSerializer(self._registry, route, topic_prefix=self._outputs)
            topic, key, value = encoder.topic, encoder.key(output), encoder.serialize(output)
            timestamp = event_time_ms(output)
        txn.send(topic, key, value, timestamp, headers)
        self._stats.produced += 1
        self._metrics.produced(topic)

    def _dead_letter(
        self,
        txn: HostTransaction,
        record: RawRecord,
        reason: str,
        kind: str,
        trace_headers: tracing.KafkaHeaders | None,
    ) -> None:
        headers = [
            ("tradecore.source.topic", record.topic.encode()),
            ("tradecore.source.partition", str(record.partition).encode()),
            ("tradecore.source.offset", str(record.offset).encode()),
            ("tradecore.processor", self._processor.name.encode()),
            ("tradecore.reason", reason.encode()[:4000]),
            *(trace_headers or ()),
        ]
        txn.send(self._outputs + "deadletter", record.key, record.value, record.timestamp_ms, headers)
        self._stats.dead_lettered += 1
        self._metrics.dead_lettered(record.topic, kind)
