"""Writing the alert tests' input into a test's namespace: events through the registry, dead letters as raw bytes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from schemas.events import Event
from schemas.registry import registry_client
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.settings import KafkaSettings
from tests.support.events import OCCURRED_AT, envelope


def event_at(build: Callable[..., Event], cls: type[Event], second: int, **fields: object) -> Event:
    """An event of a fresh id, ``second`` seconds after the builders' event time."""
    at = OCCURRED_AT + timedelta(seconds=second)
    return build(envelope=envelope(cls, event_id=uuid.uuid4(), occurred_at=at), **fields)


class Log:
    """Writes events (and raw dead letters) into the test's namespace."""

    def __init__(self, settings: KafkaSettings, registry: RegistrySettings) -> None:
        client = registry_client(registry)
        register_all(client, settings.topic_prefix)
        self._settings = settings
        self._serializers = {
            topic: EventSerializer(client, topic, topic_prefix=settings.topic_prefix)
            for topic in ("executions", "orders.checked", "orders")
        }
        self._producer = kafka.producer(settings)

    def write(self, *events: Event) -> None:
        for event in events:
            serializer = self._serializers[type(event).route().topic]
            self._producer.produce(
                serializer.topic,
                key=serializer.key(event),
                value=serializer.serialize(event),
                timestamp=event_time_ms(event),
            )
        assert self._producer.flush(30) == 0

    def dead_letter(self, reason: str) -> tuple[str, int, int]:
        """A record in ``deadletter`` as a processor writes one; returns where it landed."""
        landed: list[tuple[str, int, int]] = []
        self._producer.produce(
            self._settings.topic_prefix + "deadletter",
            key=b"BTCUSDT",
            value=b"not avro at all",
            headers=[("tradecore.reason", reason.encode()), ("tradecore.processor", b"positions")],
            on_delivery=lambda _err, msg: landed.append((msg.topic(), msg.partition(), msg.offset())),
        )
        assert self._producer.flush(30) == 0
        return landed[0]

    def raw(self, topic: str, value: bytes) -> None:
        """Bytes that are no event into ``topic`` (named without the namespace)."""
        self._producer.produce(self._settings.topic_prefix + topic, key=b"BTCUSDT", value=value)
        assert self._producer.flush(30) == 0
