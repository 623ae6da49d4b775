"""Exactly once under SIGKILL: a processor killed repeatedly mid-stream leaves no duplicate and no gap."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from deploy.local.stack import Endpoints
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer, EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.events import order_filled
from tests.support.workers import run_with_kills, start_worker

pytestmark = pytest.mark.integration


def read_committed(settings: KafkaSettings, topic: str) -> list[tuple[bytes, bytes]]:
    """Every committed record of ``topic`` as (key, value), partition by partition, up to where each ends now.

    A partition is read once the position passes its high watermark (the consumer steps over the commit markers
    without a record), or, while a transaction is still open on it, once two seconds bring nothing more."""
    reader = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"check-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,  # an idle fetch answered at once: watermark look-ups queue behind it
        }
    )
    meta = reader.list_topics(topic, timeout=10).topics[topic]
    out: list[tuple[bytes, bytes]] = []
    for p in meta.partitions:
        low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high <= low:
            continue
        reader.assign([TopicPartition(topic, p, low)])
        idle = 0
        while idle < 10:
            batch = reader.consume(1000, 0.2)
            out += [(m.key(), m.value()) for m in batch if m.error() is None]
            [position] = reader.position([TopicPartition(topic, p)])
            if position.offset >= high:
                break
            idle = 0 if batch else idle + 1
    reader.close()
    return out


def publish_fills(settings: KafkaSettings, client: SchemaRegistry, count: int) -> None:
    """``count`` fills on ``executions``: fill ids f-0, f-1, …, 37 accounts, 3 instruments (keys)."""
    serializer = EventSerializer(client, "executions", topic_prefix=settings.topic_prefix)
    producer = kafka.producer(settings)
    for i in range(count):
        fill = order_filled(
            account_id=f"ACC-{i % 37}",
            instrument=("BTCUSDT", "EURUSD", "USDJPY")[i % 3],
            fill_id=f"f-{i}",
            fill_quantity=Decimal("0.001"),
        )
        producer.produce(serializer.topic, key=serializer.key(fill), value=serializer.serialize(fill))
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def test_repartition_killed_five_times_loses_and_duplicates_nothing(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    sent = 20_000
    publish_fills(topics, client, sent)
    out_topic = topics.topic_prefix + "executions.by-account"

    kills = 5

    def rebuilt() -> list[str]:
        return re.findall(
            r"executions-by-account: rebuilt state from (\d+) records", (tmp_path / "worker.log").read_text()
        )

    landed = run_with_kills(
        lambda: start_worker(endpoints, topics.topic_prefix, ["executions-by-account"], tmp_path / "worker.log"),
        lambda: len(read_committed(topics, out_topic)) >= sent,
        kills=kills,
        # Kill i only once the worker started last has rebuilt and gone live, and a further share of the output is
        # committed: every kill lands mid-stream, after commits.
        working=lambda i: (
            len(rebuilt()) > i and len(read_committed(topics, out_topic)) >= (i + 1) * sent // (kills + 2)
        ),
        interval_s=(0.2, 1.5),
    )
    assert landed >= 3, "most kills must hit a running worker, or the test proves little"
    rebuilds = rebuilt()
    assert sum(int(n) > 0 for n in rebuilds) >= 3, f"restarts must resume after committed work: {rebuilds}"

    records = read_committed(topics, out_topic)
    decode = EventDeserializer(client, "executions", topic_prefix=topics.topic_prefix)
    fills = [decode.deserialize(value) for _, value in records]
    assert len(fills) == sent  # nothing lost, nothing twice
    assert len({f.fill_id for f in fills}) == sent  # type: ignore[attr-defined]
    assert all(key.decode() == f.account_id for (key, _), f in zip(records, fills, strict=True))  # type: ignore[attr-defined]
