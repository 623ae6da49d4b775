"""The event log the command gateway appends to: an idempotent confluent-kafka producer behind an asyncio API."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import polars as pl
from prometheus_client import Counter

from commands.gateway import Appended, Headers
from schemas.batch import BatchEncoder
from schemas.batch.registry import schema_id
from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import EventSerializer
from streams import kafka
from streams.errors import AppendFailed
from streams.host.processor import event_time_ms
from streams.kafka import KafkaError, KafkaSettings, Message, Producer, tracing
from streams.metrics import EVENTS_PRODUCED

_ANY_PARTITION = -1  # produce()'s default: the partitioner picks the key's partition
Records = tuple[str, list[bytes], list[bytes], list[int]]
"""A frame's records: the topic, and the keys, values and timestamps of its rows."""


class KafkaEventLog:
    """Appends events to their topics (``Event.route()``), keyed by account or instrument, acks=all, idempotent.

    A background thread serves delivery reports; ``append`` awaits them without blocking the event loop.
    """

    def __init__(
        self, settings: KafkaSettings, registry: SchemaRegistry, *, loads: bool = False, **producer_config: Any
    ) -> None:
        """``loads``: the caller will ``load``; its producer is made now, so that it has connected and been
        given its producer id by the first load (else the first load makes it, and waits for that)."""
        # An append that cannot be acknowledged in time fails (the API answers 503) instead of waiting minutes: with
        # fewer brokers in sync than min.insync.replicas, Kafka refuses acks=all writes until they return.
        timeout = {"message.timeout.ms": settings.append_timeout_ms}
        self._producer = kafka.producer(settings, **{**timeout, **producer_config})
        self._settings, self._config = settings, {**timeout, **producer_config}
        self._loader = self._new_loader() if loads else None
        self._loading = asyncio.Lock()
        self._load_failures: list[str] = []
        self._registry = registry
        self._prefix = settings.topic_prefix
        self._serializers: dict[str, EventSerializer] = {}
        self._encoders: dict[type[Event], BatchEncoder] = {}
        self._counters: dict[str, Counter] = {}
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def _serializer(self, topic: str) -> EventSerializer:
        serializer = self._serializers.get(topic)
        if serializer is None:
            serializer = self._serializers[topic] = EventSerializer(self._registry, topic, topic_prefix=self._prefix)
        return serializer

    def _encoder(self, event: type[Event]) -> BatchEncoder:
        encoder = self._encoders.get(event)
        if encoder is None:
            encoder = BatchEncoder(event, schema_id(self._registry, event, topic_prefix=self._prefix))
            self._encoders[event] = encoder
        return encoder

    def _produced(self, topic: str) -> Counter:
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = EVENTS_PRODUCED.labels("api", topic)
        return counter

    async def append(
        self, events: Sequence[Event], headers: Sequence[Headers | None] | None = None
    ) -> list[Appended | Exception]:
        """Produce ``events`` in order and wait for Kafka's answer on each: where it landed, or ``AppendFailed``.

        One future settles the whole batch: delivery reports fill a list on the poller thread, and the last one
        wakes the event loop once — not once per event.
        """
        if not events:
            return []
        answers, report, done = _settle(len(events))
        for i, event in enumerate(events):
            serializer = self._serializer(event.route().topic)
            value = serializer.serialize(event)
            record_headers = _with_trace(headers[i] if headers else None)
            while True:
                try:
                    self._producer.produce(
                        serializer.topic,
                        key=serializer.key(event),
                        value=value,
                        headers=record_headers,
                        timestamp=event_time_ms(event),
                        on_delivery=functools.partial(report, i),
                    )
                    break
                except BufferError:  # the local queue is full: let delivery reports drain it
                    await asyncio.sleep(0.002)
            self._produced(event.route().topic).inc()
        await done
        return [answer for answer in answers if answer is not None]

    async def append_frame(
        self, event: type[Event], frame: pl.DataFrame, headers: Headers | None = None
    ) -> list[Appended | Exception]:
        """``append`` for a frame of ``event`` rows (the batch codec's columns): encoded in one call, then one
        ``produce`` per record of the values, keys and event-time timestamps worked out as columns. The answers
        come in the order Kafka gave them (records of one partition in order), not necessarily the rows'."""
        if not frame.height:
            return []
        topic, keys, values, stamps = self._records(event, frame)
        record_headers = _with_trace(headers)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        answers: list[Appended | Exception] = []
        count = len(values)

        def report(err: KafkaError | None, msg: Message) -> None:  # on the poller thread; one callback for all
            # (``_answer`` inlined: this runs once per record of the batch)
            answers.append(Appended(msg.topic(), msg.partition(), msg.offset()) if err is None else _answer(err, msg))
            if len(answers) == count:
                loop.call_soon_threadsafe(_wake, done)

        produce = self._producer.produce
        for key, value, at in zip(keys, values, stamps, strict=True):
            while True:
                try:
                    produce(topic, value, key, _ANY_PARTITION, report, None, at, record_headers)  # as ``_produce``
                    break
                except BufferError:  # the local queue is full: let delivery reports drain it
                    await asyncio.sleep(0.002)
        self._produced(event.route().topic).inc(count)
        await done
        return answers

    @asynccontextmanager
    async def load(self, event: type[Event]) -> AsyncIterator[Callable[[Callable[[], pl.DataFrame]], Awaitable[None]]]:
        """A bulk load of ``event`` rows that needs no answer per record (``tradecore ingest file``). Each frame is
        given as the call that makes it: made and encoded on a worker thread while the frame given before it is
        produced here, in row order, after the ones before. The block ends once Kafka has acknowledged every record,
        or raises ``AppendFailed`` naming the topic.

        A producer of its own reports failures only, so an acknowledged record costs no Python call: with a delivery
        report per record, producing ran at two thirds of the rate (bench, docs/PERFORMANCE.md "Stop 32"). Loads
        take turns — a failure reported belongs to the load waiting for it — and each waits until all its records
        are acknowledged or have failed (``append_timeout_ms``), even one whose block raised.
        """
        topic = self._prefix + event.route().topic
        record_headers = _with_trace(None)
        loop = asyncio.get_running_loop()
        async with self._loading:
            loader = self._loader = self._loader or self._new_loader()
            self._load_failures.clear()
            encoded: Records | None = None  # the frame given last, produced when the next is given or at the end

            async def send(make: Callable[[], pl.DataFrame]) -> None:
                nonlocal encoded
                coming = loop.run_in_executor(None, lambda: self._records(event, make()))
                before, encoded = encoded, None  # produced at most once, even if producing it fails midway
                if before is not None:
                    await self._produce(loader, before, record_headers)
                encoded = await coming

            try:
                yield send
            finally:
                if encoded is not None:  # given, so numbered: written even when the block raised
                    await self._produce(loader, encoded, record_headers)
                remaining = await asyncio.to_thread(loader.flush, self._settings.append_timeout_ms / 1000 + 5)
            if self._load_failures or remaining:
                why = self._load_failures[0] if self._load_failures else f"{remaining} record(s) not answered in time"
                raise AppendFailed(f"Kafka did not acknowledge every event of the load on {topic}: {why}")

    async def _produce(self, loader: Producer, records: Records, headers: list[tuple[str, bytes]] | None) -> None:
        """Queue a frame's records on the loader, in row order."""
        topic, keys, values, stamps = records
        produce = loader.produce
        for key, value, at in zip(keys, values, stamps, strict=True):
            while True:
                try:
                    # Positional: confluent-kafka parses keyword arguments by name on every call, which cost
                    # 0.7 µs of a record's 1.7 (docs/PERFORMANCE.md "Stop 33"). No callback: the producer's own.
                    produce(topic, value, key, _ANY_PARTITION, None, None, at, headers)
                    break
                except BufferError:  # the local queue is full: let the broker's acknowledgements drain it
                    loader.poll(0)
                    await asyncio.sleep(0.002)
        self._produced(topic.removeprefix(self._prefix)).inc(len(values))

    def _new_loader(self) -> Producer:
        only_failures = {"delivery.report.only.error": True, "on_delivery": self._load_failed}
        return kafka.producer(self._settings, **{**self._config, **only_failures})

    def _load_failed(self, err: KafkaError | None, msg: Message) -> None:
        """The loader's delivery report: failures only (``delivery.report.only.error``)."""
        if err is not None:
            self._load_failures.append(err.str())

    def _records(self, event: type[Event], frame: pl.DataFrame) -> Records:
        """The topic, keys, values and event-time timestamps of a frame of ``event`` rows, worked out as columns."""
        route = event.route()
        values = self._encoder(event).encode(frame)
        keys = frame.get_column(route.key).cast(pl.Binary).to_list()
        micros = frame.get_column("envelope").struct.field("occurred_at").dt.epoch("us").to_numpy()
        # What event_time_ms gives: datetime.timestamp() (µs / 10**6 as a float), times 1000, truncated.
        stamps = ((micros / 1e6) * 1000).astype(np.int64).tolist()
        return self._prefix + route.topic, keys, values, stamps

    def close(self, timeout_s: float = 30.0) -> int:
        """Flush what is queued and stop; the number of events still undelivered (0 when all made it)."""
        remaining: int = self._producer.flush(timeout_s)
        if self._loader is not None:
            remaining += self._loader.flush(timeout_s)
        self._closing.set()
        self._poller.join(timeout=5)
        return remaining

    def _serve_reports(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.05)


def _settle(
    count: int,
) -> tuple[list[Appended | Exception | None], Callable[[int, KafkaError | None, Message], None], asyncio.Future[None]]:
    """The answers of ``count`` records, the delivery report that fills them (on the poller thread), and a future
    the last report settles: one wake-up of the event loop per batch, not one per record."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    answers: list[Appended | Exception | None] = [None] * count
    remaining = [count]

    def report(i: int, err: KafkaError | None, msg: Message) -> None:
        answers[i] = _answer(err, msg)
        remaining[0] -= 1
        if remaining[0] == 0:
            loop.call_soon_threadsafe(_wake, done)

    return answers, report, done


def _with_trace(given: Headers | None) -> list[tuple[str, bytes]] | None:
    """The record's headers: the ones given, with the W3C trace context of the command — given (a batch appends
    other requests' events too), else the current span's."""
    record = [(name, value.encode()) for name, value in given.items()] if given else []
    if not any(name == tracing.TRACEPARENT for name, _ in record):
        record = tracing.inject(None, record)
    return record or None


def _answer(err: KafkaError | None, msg: Message) -> Appended | Exception:
    if err is not None:
        return AppendFailed(f"Kafka did not acknowledge the event on {msg.topic()}: {err.str()}")
    return Appended(msg.topic(), msg.partition(), msg.offset())


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
