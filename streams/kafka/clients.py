"""The one place that configures confluent-kafka clients for tradecore."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from streams.kafka.settings import KafkaSettings


def admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers})


def broker_count(address: str, timeout_s: float) -> int:
    """How many brokers the cluster behind ``address`` reports; 0 when it does not answer within ``timeout_s``."""
    # log_level 0: a broker that is still starting is expected by the callers, not worth librdkafka's stderr noise.
    client = AdminClient({"bootstrap.servers": address, "socket.timeout.ms": int(timeout_s * 1000), "log_level": 0})
    try:
        return len(client.list_topics(timeout=timeout_s).brokers)
    except Exception:
        return 0


def producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """An idempotent producer: ``acks=all``, no duplicates or reordering on retry."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # Java clients' partitioner: a key lands on the same partition whoever writes it (co-partitioning).
        "partitioner": "murmur2_random",
    }
    return Producer({**config, **overrides})


def consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that sees committed transactions only and commits offsets explicitly."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    return Consumer({**config, **overrides})
