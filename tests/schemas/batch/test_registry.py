"""Batch-encoded values through the real schema registry: confluent-kafka's own AvroDeserializer reads every one."""

from __future__ import annotations

import pytest
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import avsc, codec
from schemas.batch import BatchDecoder, BatchEncoder, nodes, registry
from schemas.events import EVENT_TYPES, events_on
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.schemas.batch import reference
from tests.support import confluent
from tests.support import events as examples

pytestmark = pytest.mark.integration


def test_every_batch_encoded_event_decodes_with_confluent_kafkas_avro_deserializer(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    prefix = kafka_settings.topic_prefix
    register_all(client, prefix)
    by_type: dict[str, list[dict[str, object]]] = {}
    for event in [*examples.every_event(), *examples.edge_cases()]:
        by_type.setdefault(type(event).__name__, []).append(codec.to_avro(event))
    assert set(by_type) == set(EVENT_TYPES)

    for name, records in by_type.items():
        cls = EVENT_TYPES[name]
        topic = prefix + cls.route().topic
        encoder = BatchEncoder(cls, registry.schema_id(client, cls, topic_prefix=prefix))
        values = encoder.encode(reference.frame(nodes.parse(avsc.expanded(name)), records))

        reader = confluent.deserializer(registry_settings.url, avsc.schema_str(name))
        context = SerializationContext(topic, MessageField.VALUE)
        assert [reader(value, context) for value in values] == records, name
        # and they are the bytes the per-record path writes
        serializer = EventSerializer(client, cls.route().topic, topic_prefix=prefix)
        assert values == [serializer.serialize(codec.from_avro(cls, record)) for record in records], name
        # and the batch decoder, asking the registry, reads them back
        decoded = BatchDecoder(registry.writers(client), events_on(cls.route().topic)).decode(values)
        assert decoded.malformed == [] and decoded.frames[name].height == len(records)
