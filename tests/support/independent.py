"""Reading what tradecore wrote with nothing but confluent-kafka and its AvroDeserializer: an independent view."""

from __future__ import annotations

import time
import warnings
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.support import confluent

# A broker restarted: the partition's leader moved, and the client's metadata still names the old one.
_LEADER_MOVING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE})


class IndependentReader:
    def __init__(self, bootstrap: str, registry_url: str) -> None:
        self._deserialize = confluent.deserializer(registry_url)
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "independent-reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                # Brokers answer an idle fetch at once instead of holding it for 500 ms: a watermark look-up queues
                # behind the fetch in flight, and reading ends at a fetch that finds only a commit marker.
                "fetch.wait.max.ms": 20,
            }
        )

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """The partition's low and high offsets; a leader moving or metadata catching up is waited out (and said, as
        a warning pytest lists for passing tests too: ``tests.support.confluent``)."""
        started = time.monotonic()
        deadline = started + 30
        while True:
            try:
                low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                return int(low), int(high)
            except KafkaException as err:
                error = err.args[0]
                moving = error.code() in _LEADER_MOVING  # not flagged retriable by librdkafka here, yet passing
                if not (error.retriable() or moving) or time.monotonic() > deadline:
                    raise
                took = time.monotonic() - started
                warnings.warn(f"watermarks of {topic}[{partition}] asked again after {took:.1f} s: {err}", stacklevel=2)
                time.sleep(0.5)

    def partition(self, topic: str, partition: int) -> list[tuple[int, str, dict[str, Any]]]:
        """Every record of a partition as (offset, key, decoded value), up to its current end."""
        low, high = self._watermarks(topic, partition)
        if high <= low:
            return []
        self._consumer.assign([TopicPartition(topic, partition, low)])
        out = []
        deadline = time.monotonic() + 30
        while True:
            msg = self._consumer.poll(0.1)
            if msg is None:
                # Transactional topics hold commit markers too: done when the position passes the end.
                [position] = self._consumer.position([TopicPartition(topic, partition)])
                if position.offset >= high:
                    return out
                assert time.monotonic() < deadline, f"{topic}[{partition}] stalled at {position.offset} of {high}"
                continue
            assert msg.error() is None, msg.error()
            value = self._deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE))
            out.append((msg.offset(), msg.key().decode(), value))
            if msg.offset() + 1 >= high:
                return out

    def at(self, topic: str, partition: int, offset: int) -> dict[str, Any]:
        for found, _key, value in self.partition(topic, partition):
            if found == offset:
                return value
        raise AssertionError(f"no record at {topic}[{partition}]@{offset}")

    def topic(self, topic: str, partitions: int = 6) -> list[dict[str, Any]]:
        return [value for p in range(partitions) for _, _, value in self.partition(topic, p)]

    def close(self) -> None:
        self._consumer.close()


def read_topic(bootstrap: str, registry_url: str, topic: str) -> list[dict[str, Any]]:
    """Every committed record of ``topic``, decoded, partition by partition."""
    reader = IndependentReader(bootstrap, registry_url)
    try:
        return reader.topic(topic)
    finally:
        reader.close()
