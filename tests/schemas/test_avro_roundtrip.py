"""An Avro record written by one process is read back, through the real schema registry, by another."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.settings import RegistrySettings
from streams import kafka
from streams.settings import KafkaSettings
from tests.support import confluent

pytestmark = pytest.mark.integration

TICK = json.dumps(
    {
        "type": "record",
        "name": "Probe",
        "namespace": "tradecore.test",
        "fields": [
            {"name": "instrument", "type": "string"},
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 8},
            },
            {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        ],
    }
)


def test_record_produced_is_decoded_by_a_consumer_in_another_process(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    topic = topics.topic_prefix + "ticks"
    serialize = AvroSerializer(confluent.registry(registry_settings.url), TICK, conf=confluent.SUBJECTS)
    sent = [
        {
            "instrument": "BTCUSDT",
            "price": Decimal("40123.45000000"),
            "ts_us": datetime(2021, 1, 8, 0, 0, i, tzinfo=UTC),
        }
        for i in range(3)
    ]
    producer = kafka.producer(topics)
    for record in sent:
        producer.produce(
            topic, key=b"BTCUSDT", value=serialize(record, SerializationContext(topic, MessageField.VALUE))
        )
    assert producer.flush(30) == 0

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.consume_avro",
            topics.bootstrap_servers,
            registry_settings.url,
            topic,
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    received = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["key"] for r in received] == ["BTCUSDT"] * 3
    # The other process sees the exact decimal and the event time that were sent, not floats.
    assert [r["value"]["price"] for r in received] == ["40123.45000000"] * 3
    assert [r["value"]["ts_us"] for r in received] == [str(record["ts_us"]) for record in sent]


def test_registry_refuses_a_backward_incompatible_version(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = confluent.registry(registry_settings.url)
    subject = topics.topic_prefix + "ticks-value"
    client.register_schema(subject, Schema(TICK, "AVRO"))
    client.set_compatibility(subject, "BACKWARD_TRANSITIVE")
    added_required = json.loads(TICK)
    added_required["fields"].append({"name": "venue", "type": "string"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(json.dumps(added_required), "AVRO"))
    assert refused.value.http_status_code == 409
    assert client.get_versions(subject) == [1]
