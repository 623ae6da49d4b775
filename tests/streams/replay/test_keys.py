"""The partition we compute for a key is the one our producers put it on, on a real broker."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Message

from streams import kafka
from streams.replay.keys import partition_for
from streams.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_partition_for_agrees_with_the_producer_for_every_key(topics: KafkaSettings) -> None:
    keys = [f"ACC-{n}" for n in range(200)] + ["BTCUSDT", "ETHUSDT", "XBTUSD", "", "é-ünïcode", "x" * 37]
    landed: dict[str, int] = {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        landed[msg.key().decode()] = msg.partition()

    producer = kafka.producer(topics)
    for key in keys:
        producer.produce(topics.topic_prefix + "orders", key=key.encode(), value=b"-", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(set(landed.values())) == topics.partitions  # the keys do spread
    assert {key: partition_for(key, topics.partitions) for key in keys} == landed
