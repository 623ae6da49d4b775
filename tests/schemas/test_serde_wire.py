"""The per-record serializer writes the Confluent wire format itself (fastavro and a 5-byte header, no Kafka
library in ``schemas``): its bytes are confluent-kafka's ``AvroSerializer``'s, byte for byte, and confluent-kafka's
``AvroDeserializer`` reads them. Against confluent-kafka's in-memory registry, through the Kafka edge's client."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import avsc, codec
from schemas.contract_errors import SchemaRegistrationError
from schemas.events import EVENT_TYPES
from schemas.serde import EventDeserializer, EventSerializer, subject_name
from streams.kafka.registry import ConfluentRegistry
from tests.support import events as examples

PREFIX = "wire."


@pytest.fixture
def confluent() -> SchemaRegistryClient:
    # The mock keeps its state per URL for the life of the process: a URL of each test's own.
    return SchemaRegistryClient.new_client({"url": f"mock://serde-wire-{uuid.uuid4().hex}"})


def test_every_event_is_written_as_confluent_kafkas_serializer_writes_it_and_read_back_by_its_deserializer(
    confluent: SchemaRegistryClient,
) -> None:
    registry = ConfluentRegistry(confluent)
    # As register_all registers them (the mock has no compatibility rules, which register_all sets first; that
    # runs against the real registry in test_serde.py).
    registered = {
        name: confluent.register_schema(subject_name(PREFIX + cls.route().topic, cls), Schema(avsc.schema_str(name)))
        for name, cls in EVENT_TYPES.items()
    }
    sent = examples.every_event() + examples.edge_cases()
    assert {type(event).__name__ for event in sent} == set(EVENT_TYPES)
    for event in sent:
        name, topic = type(event).__name__, event.route().topic
        context = SerializationContext(PREFIX + topic, MessageField.VALUE)
        ours = EventSerializer(registry, topic, topic_prefix=PREFIX).serialize(event)

        theirs = AvroSerializer(
            confluent,
            avsc.schema_str(name),
            conf={"auto.register.schemas": False, "subject.name.strategy": topic_record_subject_name_strategy},
        )(codec.to_avro(event), context)
        assert ours == theirs, name
        assert ours[:5] == b"\x00" + registered[name].to_bytes(4, "big")
        assert AvroDeserializer(confluent, avsc.schema_str(name))(ours, context) == codec.to_avro(event), name
        assert EventDeserializer(registry, topic, topic_prefix=PREFIX).deserialize(ours) == event


def test_subjects_are_named_as_confluent_kafkas_topic_record_strategy_names_them() -> None:
    for cls in EVENT_TYPES.values():
        topic = PREFIX + cls.route().topic
        expected = topic_record_subject_name_strategy(SerializationContext(topic, MessageField.VALUE), cls.fullname())
        assert subject_name(topic, cls) == expected


def test_a_serializer_names_the_subject_it_did_not_find_registered(confluent: SchemaRegistryClient) -> None:
    with pytest.raises(SchemaRegistrationError, match=r"not registered under wire\.orders-tradecore\.events\.") as err:
        EventSerializer(ConfluentRegistry(confluent), "orders", topic_prefix=PREFIX)
    assert "register_all" in str(err.value)
