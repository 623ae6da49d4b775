"""The event log the command gateway appends to: an idempotent confluent-kafka producer behind an asyncio API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import Counter

from commands.gateway import Appended
from schemas.events import Event
from schemas.serde import EventSerializer
from streams import kafka, tracing
from streams.errors import StreamsError
from streams.host.processor import event_time_ms
from streams.metrics import EVENTS_PRODUCED
from streams.settings import KafkaSettings


class AppendFailed(StreamsError):
    """Kafka did not acknowledge an event; it may or may not be in the log."""


class KafkaEventLog:
    """Appends events to their topics (``Event.route()``), keyed by account or instrument, acks=all, idempotent.

    A background thread serves delivery reports; ``append`` awaits them without blocking the event loop.
    """

    def __init__(self, settings: KafkaSettings, registry: SchemaRegistryClient, **producer_config: Any) -> None:
        self._producer = kafka.producer(settings, **producer_config)
        self._registry = registry
        self._prefix = settings.topic_prefix
        self._serializers: dict[str, EventSerializer] = {}
        self._counters: dict[str, Counter] = {}
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def _serializer(self, topic: str) -> EventSerializer:
        serializer = self._serializers.get(topic)
        if serializer is None:
            serializer = self._serializers[topic] = EventSerializer(self._registry, topic, topic_prefix=self._prefix)
        return serializer

    def _produced(self, topic: str) -> Counter:
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = EVENTS_PRODUCED.labels("api", topic)
        return counter

    async def append(self, events: Sequence[Event], headers: Mapping[str, str] | None = None) -> list[Appended]:
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[Appended]] = []
        # The current span (the HTTP command's) travels with the events: W3C traceparent in the headers.
        given = [(name, value.encode()) for name, value in headers.items()] if headers else None
        record_headers = tracing.inject(None, given) or None
        for event in events:
            serializer = self._serializer(event.route().topic)
            future: asyncio.Future[Appended] = loop.create_future()
            value = serializer.serialize(event)
            while True:
                try:
                    self._producer.produce(
                        serializer.topic,
                        key=serializer.key(event),
                        value=value,
                        headers=record_headers,
                        timestamp=event_time_ms(event),
                        on_delivery=lambda err, msg, f=future: loop.call_soon_threadsafe(_settle, f, err, msg),
                    )
                    break
                except BufferError:  # the local queue is full: let delivery reports drain it
                    await asyncio.sleep(0.002)
            pending.append(future)
            self._produced(event.route().topic).inc()
        return list(await asyncio.gather(*pending))

    def close(self, timeout_s: float = 30.0) -> int:
        """Flush what is queued and stop; the number of events still undelivered (0 when all made it)."""
        remaining: int = self._producer.flush(timeout_s)
        self._closing.set()
        self._poller.join(timeout=5)
        return remaining

    def _serve_reports(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.05)


def _settle(future: asyncio.Future[Appended], err: KafkaError | None, msg: Message) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(AppendFailed(f"Kafka did not acknowledge the event on {msg.topic()}: {err.str()}"))
    else:
        future.set_result(Appended(msg.topic(), msg.partition(), msg.offset()))
