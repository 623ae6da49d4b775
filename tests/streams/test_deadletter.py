"""Poison records go to the dead-letter topic with the reason, and the processor goes on."""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from deploy.local.stack import Endpoints
from schemas.events import OrderPlaced
from schemas.serde import EventDeserializer, EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.events import envelope, order_filled, order_placed, tick_ingested
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration


def records(settings: KafkaSettings, topic: str, wanted: int, timeout_s: float = 90) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"dl-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    found: list = []
    deadline = time.monotonic() + timeout_s
    while len(found) < wanted and time.monotonic() < deadline:
        found += [m for m in consumer.consume(100, 1.0) if m.error() is None]
    consumer.close()
    return found


def test_garbage_unknown_schemas_and_invalid_values_are_dead_lettered_and_the_rest_flows(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    register_all(client, prefix)
    executions = EventSerializer(client, "executions", topic_prefix=prefix)
    ticks = EventSerializer(client, "ticks", topic_prefix=prefix)
    producer = kafka.producer(topics)
    good = order_filled(account_id="ACC-OK")
    producer.produce(executions.topic, key=b"BTCUSDT", value=b"\x00\x00\x00\x00garbage!")  # a framing lie
    producer.produce(executions.topic, key=b"BTCUSDT", value=b"not avro at all")
    # An event of another topic: decodable, but not an execution.
    producer.produce(executions.topic, key=b"BTCUSDT", value=ticks.serialize(tick_ingested()))
    producer.produce(executions.topic, key=b"BTCUSDT", value=executions.serialize(good), timestamp=event_time_ms(good))
    assert producer.flush(30) == 0

    worker = start_worker(endpoints, prefix, ["executions-by-account"], tmp_path / "worker.log")
    try:
        dead = records(topics, prefix + "deadletter", 3)
        forwarded = records(topics, prefix + "executions.by-account", 1)
    finally:
        worker.terminate()
        worker.wait(60)

    assert len(dead) == 3
    reasons = [dict(m.headers())["tradecore.reason"].decode() for m in dead]
    assert all(r.startswith("undecodable:") for r in reasons), reasons
    assert any("magic byte" in r for r in reasons)
    assert any("TickIngested" in r for r in reasons)
    headers = dict(dead[0].headers())
    assert headers["tradecore.source.topic"] == (prefix + "executions").encode()
    assert headers["tradecore.processor"] == b"executions-by-account"
    assert {m.value() for m in dead} >= {b"not avro at all"}  # the raw bytes are kept, nothing is lost
    assert [m.key() for m in forwarded] == [b"ACC-OK"]


@pytest.mark.integration
def test_a_valid_record_with_junk_appended_on_orders_or_ticks_is_dead_lettered_not_processed(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    # Issue 12 F7: fastavro reads a record and ignores what follows it, so these were processed as real events.
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    register_all(client, prefix)
    orders = EventSerializer(client, "orders", topic_prefix=prefix)
    ticks = EventSerializer(client, "ticks", topic_prefix=prefix)
    producer = kafka.producer(topics)
    tick = tick_ingested()
    producer.produce(
        ticks.topic, key=b"BTCUSDT", value=ticks.serialize(tick) + bytes(16), timestamp=event_time_ms(tick)
    )
    for account, junk in (("ACC-BAD", bytes(8) + b"junk4567"), ("ACC-OK", b"")):
        order = order_placed(account_id=account, order_id=f"ord-{account}", envelope=envelope(OrderPlaced))
        order = dataclasses.replace(order, envelope=dataclasses.replace(order.envelope, aggregate_id=account))
        value = orders.serialize(order) + junk
        producer.produce(orders.topic, key=account.encode(), value=value, timestamp=event_time_ms(order))
    assert producer.flush(30) == 0

    worker = start_worker(endpoints, prefix, ["risk", "signals"], tmp_path / "worker.log")
    try:
        dead = records(topics, prefix + "deadletter", 2)
        decided = records(topics, prefix + "orders.checked", 2, timeout_s=10)  # one is all there should be
    finally:
        worker.terminate()
        worker.wait(60)

    reasons = {dict(m.headers())["tradecore.source.topic"].decode(): m for m in dead}
    assert set(reasons) == {prefix + "orders", prefix + "ticks"}
    for message in dead:
        reason = dict(message.headers())["tradecore.reason"].decode()
        assert reason.startswith("undecodable:") and "trailing bytes: 16 bytes left" in reason, reason
    assert reasons[prefix + "orders"].key() == b"ACC-BAD"
    checked = EventDeserializer(client, "orders.checked", topic_prefix=prefix)
    decisions = [checked.deserialize(m.value()) for m in decided]
    assert [d.order_id for d in decisions] == ["ord-ACC-OK"]  # type: ignore[attr-defined]  # junk-tailed: never decided
