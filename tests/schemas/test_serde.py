"""Events through the real schema registry and Kafka: exact round trips, readable by anyone, evolvable, and a
named error for bytes that are not an event."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry import Schema, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import avsc
from schemas.contract_errors import EventDecodeError, SchemaRegistrationError, UnknownEventError
from schemas.errors import TradecoreError
from schemas.events import EVENT_TYPES, CancelRequested, Envelope, Event, OrderPlaced
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer, EventSerializer, register_all, subject_name
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support import confluent
from tests.support import events as examples

pytestmark = pytest.mark.integration

EVENT_TOPICS = sorted({cls.route().topic for cls in EVENT_TYPES.values()})


def produce(settings: KafkaSettings, client: SchemaRegistry, events: Sequence[Event]) -> None:
    producer = kafka.producer(settings)
    serializers: dict[str, EventSerializer] = {}
    for event in events:
        topic = event.route().topic
        if topic not in serializers:
            serializers[topic] = EventSerializer(client, topic, topic_prefix=settings.topic_prefix)
        serializer = serializers[topic]
        producer.produce(serializer.topic, key=serializer.key(event), value=serializer.serialize(event))
    assert producer.flush(30) == 0


def consume(settings: KafkaSettings, topics: Sequence[str], count: int, timeout_s: float = 60) -> list[Message]:
    consumer = kafka.consumer(settings, group_id=f"test-serde-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([settings.topic_prefix + topic for topic in topics])
    received: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append(message)
    finally:
        consumer.close()
    assert len(received) == count, f"{len(received)} of {count} records within {timeout_s}s"
    return received


# --- round trips ------------------------------------------------------------------------------------------------


def test_every_event_comes_back_from_kafka_exactly_as_written(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    sent = examples.every_event() + examples.edge_cases()
    produce(topics, client, sent)

    readers = {topic: EventDeserializer(client, topic, topic_prefix=topics.topic_prefix) for topic in EVENT_TOPICS}
    received = []
    for message in consume(topics, EVENT_TOPICS, len(sent)):
        topic = message.topic().removeprefix(topics.topic_prefix)
        event = readers[topic].deserialize(message.value())
        assert event.route().topic == topic
        assert message.key() == event.key.encode()
        received.append(event)
    # repr, not only ==: Decimal('0.25000000') keeps its scale, datetimes their microseconds and UTC, Side.BUY
    # stays a Side, event_id a UUID.
    assert sorted(map(repr, received)) == sorted(map(repr, sent))
    assert sorted(received, key=repr) == sorted(sent, key=repr)


def test_a_plain_confluent_consumer_in_another_process_reads_what_we_wrote(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    """No tradecore code on the reading side: the writer's schema from the registry is all it needs."""
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    sent = [event for event in examples.every_event() if event.route().topic == "orders"]
    produce(topics, client, sent)

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.consume_avro",
            topics.bootstrap_servers,
            registry_settings.url,
            topics.topic_prefix + "orders",
            str(len(sent)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    received = [json.loads(line) for line in out.stdout.splitlines()]
    assert {record["key"] for record in received} == {"acc-7"}
    # str() on both sides: decimals at scale 8, times with microseconds and zone, enums by symbol, uuid as text.
    expected = [json.loads(json.dumps(dataclasses.asdict(event), default=str)) for event in sent]
    by_type = lambda value: value["envelope"]["event_type"]  # noqa: E731
    assert sorted((record["value"] for record in received), key=by_type) == sorted(expected, key=by_type)
    placed = next(r["value"] for r in received if r["value"]["envelope"]["event_type"] == "OrderPlaced")
    assert placed["quantity"] == "0.25000000"
    assert placed["side"] == "BUY"
    assert placed["envelope"]["occurred_at"] == "2024-03-01 12:30:15.123456+00:00"


def test_an_event_written_with_an_older_schema_is_read_by_todays_code(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    # confluent-kafka's own client and serializer write the older version, as an earlier release did
    raw = confluent.registry(registry_settings.url)
    topic = topics.topic_prefix + "orders"
    subject = subject_name(topic, CancelRequested)
    # CancelRequested as an earlier release wrote it: no reason, and an envelope without causation_id. Today's
    # schema added both as optional fields with a null default.
    old: dict[str, Any] = json.loads(avsc.schema_str("CancelRequested"))
    old["fields"] = [field for field in old["fields"] if field["name"] != "reason"]
    old_envelope = old["fields"][0]["type"]
    old_envelope["fields"] = [field for field in old_envelope["fields"] if field["name"] != "causation_id"]
    raw.set_compatibility(subject_name=subject, level="BACKWARD_TRANSITIVE")
    old_writer = AvroSerializer(
        raw, json.dumps(old), conf={"subject.name.strategy": topic_record_subject_name_strategy}
    )
    written_at = datetime(2023, 11, 2, 9, 15, 0, 654321, tzinfo=UTC)
    old_record = {
        "envelope": {
            "event_id": uuid.UUID("0b7e9a52-5d1c-4f3e-8a44-9c0d2e1f3a4b"),
            "event_type": "CancelRequested",
            "occurred_at": written_at,
            "recorded_at": written_at,
            "correlation_id": "corr-old",
            "aggregate_id": "acc-7",
            "sequence": 3,
            "schema_version": 1,
        },
        "order_id": "ord-old",
        "account_id": "acc-7",
        "instrument": "ETHUSDT",
    }
    producer = kafka.producer(topics)
    producer.produce(topic, key=b"acc-7", value=old_writer(old_record, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(30) == 0

    register_all(client, topics.topic_prefix)  # today's service starts: its schema becomes version 2
    assert raw.get_versions(subject) == [1, 2]
    today = examples.cancel_requested()
    produce(topics, client, [today])

    reader = EventDeserializer(client, "orders", topic_prefix=topics.topic_prefix)
    decoded = [reader.deserialize(message.value()) for message in consume(topics, ["orders"], 2)]
    assert decoded == [
        CancelRequested(
            envelope=Envelope(
                event_id=uuid.UUID("0b7e9a52-5d1c-4f3e-8a44-9c0d2e1f3a4b"),
                event_type="CancelRequested",
                occurred_at=written_at,
                recorded_at=written_at,
                correlation_id="corr-old",
                causation_id=None,
                aggregate_id="acc-7",
                sequence=3,
                schema_version=1,
            ),
            order_id="ord-old",
            account_id="acc-7",
            instrument="ETHUSDT",
            reason=None,
        ),
        today,
    ]


# --- registration -----------------------------------------------------------------------------------------------


def test_register_all_sets_backward_transitive_on_every_subject_and_is_idempotent(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    prefix = kafka_settings.topic_prefix
    first = register_all(registry_client(registry_settings), prefix)
    again = register_all(registry_client(registry_settings), prefix)  # a fresh client: no client-side cache
    assert again == first
    assert [r.event for r in first] == list(EVENT_TYPES)
    assert first[0].subject == f"{prefix}orders-tradecore.events.OrderPlaced"
    client = confluent.registry(registry_settings.url)
    for registration in first:
        assert client.get_compatibility(registration.subject) == "BACKWARD_TRANSITIVE"
        assert client.get_versions(registration.subject) == [1]


def test_processes_starting_together_on_a_fresh_namespace_all_register(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    # The API's workers, the processors and the projector start at once (`make demo`, `tradecore api --workers 2`);
    # the registry answers the second of two simultaneous "set compatibility" or "register" calls with a conflict.
    prefix = kafka_settings.topic_prefix
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(lambda _: register_all(registry_client(registry_settings), prefix), range(6)))
    assert all(outcome == outcomes[0] for outcome in outcomes)
    client = confluent.registry(registry_settings.url)
    for registration in outcomes[0]:
        assert client.get_compatibility(registration.subject) == "BACKWARD_TRANSITIVE"
        assert client.get_versions(registration.subject) == [1]


def test_the_registry_refuses_a_version_that_could_not_read_the_ones_before(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    register_all(registry_client(registry_settings), kafka_settings.topic_prefix)
    client = confluent.registry(registry_settings.url)
    subject = subject_name(kafka_settings.topic_prefix + "orders", OrderPlaced)
    added_required: dict[str, Any] = json.loads(avsc.schema_str("OrderPlaced"))
    added_required["fields"].append({"name": "venue", "type": "string", "doc": "no default"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(json.dumps(added_required), "AVRO"))
    assert refused.value.http_status_code == 409
    assert client.get_versions(subject) == [1]


def test_register_all_names_the_event_whose_registered_history_it_cannot_read(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    raw = confluent.registry(registry_settings.url)
    subject = subject_name(kafka_settings.topic_prefix + "orders", OrderPlaced)
    history: dict[str, Any] = json.loads(avsc.schema_str("OrderPlaced"))
    next(field for field in history["fields"] if field["name"] == "quantity")["type"] = "boolean"
    raw.register_schema(subject, Schema(json.dumps(history), "AVRO"))
    with pytest.raises(SchemaRegistrationError, match="refused the current schema of OrderPlaced under") as refused:
        register_all(registry_client(registry_settings), kafka_settings.topic_prefix)
    assert subject in str(refused.value)
    assert "schemas-check" in str(refused.value)
    assert raw.get_versions(subject) == [1]


def test_a_serializer_will_not_start_before_its_schemas_are_registered(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    with pytest.raises(SchemaRegistrationError, match=r"is not registered under .*orders-tradecore\.events") as err:
        EventSerializer(client, "orders", topic_prefix=kafka_settings.topic_prefix)
    assert "register_all" in str(err.value)
    # ... and it registered nothing itself.
    assert client.subjects(kafka_settings.topic_prefix) == []


def test_a_serializer_refuses_an_event_of_another_topic(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    register_all(client, kafka_settings.topic_prefix)
    orders = EventSerializer(client, "orders", topic_prefix=kafka_settings.topic_prefix)
    with pytest.raises(UnknownEventError, match=r"OrderFilled is not written to .*orders") as err:
        orders.serialize(examples.order_filled())
    assert "it goes to executions" in str(err.value)


# --- bytes that are not an event --------------------------------------------------------------------------------


def test_bytes_that_are_not_an_event_raise_the_decode_error_saying_why(
    kafka_settings: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    prefix = kafka_settings.topic_prefix
    register_all(client, prefix)
    good = EventSerializer(client, "orders", topic_prefix=prefix).serialize(examples.order_placed())
    reader = EventDeserializer(client, "orders", topic_prefix=prefix)
    unknown_id = b"\x00" + (2**31 - 1).to_bytes(4, "big") + b"\x02\x04"
    cases: list[tuple[bytes | None, str]] = [
        (None, "no value is too short for the Confluent wire format"),
        (b"\x00\x00\x01", "3 bytes is too short"),
        (b'{"order_id": "ord-1"}', "first byte is 0x7b, not the Confluent magic byte 0x00"),
        (unknown_id, "schema id 2147483647 is not in the registry"),
        (good[:-6], r"bytes under schema id \d+ \(tradecore.events.OrderPlaced\) do not decode: EOFError"),
        (good[:5] + b"\xff\xff\xff", r"\(tradecore.events.OrderPlaced\) do not decode"),
        (good + bytes(16), "trailing bytes: 16 bytes left after the tradecore.events.OrderPlaced Avro body"),
    ]
    for data, reason in cases:
        with pytest.raises(EventDecodeError, match=reason) as err:
            reader.deserialize(data)
        assert isinstance(err.value, TradecoreError)
        assert f"{prefix}orders" in str(err.value)

    tick = EventSerializer(client, "ticks", topic_prefix=prefix).serialize(examples.tick_ingested())
    with pytest.raises(
        EventDecodeError, match=r"is tradecore\.events\.TickIngested, which is not an event of this topic"
    ):
        reader.deserialize(tick)
    assert reader.deserialize(good) == examples.order_placed()  # bad records leave the reader as it was
