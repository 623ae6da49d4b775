"""Appending events to a namespace's topics as the producers do: registered schemas, keyed, stamped with event time."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import EventSerializer, register_all
from streams import kafka
from streams.host.processor import event_time_ms
from streams.settings import KafkaSettings


def append(settings: KafkaSettings, client: SchemaRegistry, events: Iterable[Event]) -> None:
    """Every event to its topic in ``settings``' namespace, in order; returns once all are acknowledged."""
    register_all(client, settings.topic_prefix)
    serializers: dict[str, EventSerializer] = {}
    producer = kafka.producer(settings)
    for event in events:
        route = event.route().topic
        ser = serializers.get(route)
        if ser is None:
            ser = serializers[route] = EventSerializer(client, route, topic_prefix=settings.topic_prefix)
        producer.produce(ser.topic, key=ser.key(event), value=ser.serialize(event), timestamp=event_time_ms(event))
        producer.poll(0)
    assert producer.flush(60) == 0
