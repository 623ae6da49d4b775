"""The one place that configures confluent-kafka clients for tradecore."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.kafka.settings import KafkaSettings


def admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers})


def shared_admin(settings: KafkaSettings) -> AdminClient:
    """The process's one admin client for ``settings``' cluster, for the look-ups that many short-lived readers make
    (where partitions end). A client made per reader meets librdkafka's start-up race: a request sent while the
    bootstrap connection is being retired for the broker it named waits for the client's one-second timer — 1 or
    3 s for one reader in three when a restart's six partitions made theirs side by side. (Processes here are
    spawned, never forked, so none inherits it; its callers serialize their calls: ``logreader._LIST_OFFSETS``.)"""
    with _SHARED_LOCK:
        client = _SHARED.get(settings.bootstrap_servers)
        if client is None:
            client = _SHARED[settings.bootstrap_servers] = admin(settings)
        return client


def renew_shared_admin(settings: KafkaSettings, stale: AdminClient) -> None:
    """Let the next ``shared_admin`` make a new client in place of ``stale`` (unless another caller already has).

    After a broker came back, the shared client went on answering FENCED_LEADER_EPOCH for every partition it had led,
    for as long as it was asked (30 s, tests/deploy/test_broker_loss.py): it keeps the leaders' epochs it last knew
    and does not refresh them for that answer. A new client starts from the cluster's metadata as it is now."""
    with _SHARED_LOCK:
        if _SHARED.get(settings.bootstrap_servers) is stale:
            del _SHARED[settings.bootstrap_servers]


_SHARED: dict[str, AdminClient] = {}
_SHARED_LOCK = threading.Lock()


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
        # A consumer whose prefetch queue is full (every bounded one here: the host's group consumer, a rebuild's and
        # a checkpoint's readers) waits this long before fetching again — librdkafka's default is a whole second,
        # which a host drains in milliseconds: six checkpoints loaded side by side took 1-2 s instead of 0.14 s.
        "fetch.queue.backoff.ms": 10,
    }
    return Consumer({**config, **overrides})


class FinalCommits:
    """Asks groups for the offsets they have committed for good, over one consumer per group kept until ``close``
    (a consumer made and closed per question cost 3.4 ms of CPU and 42 ms: asking six groups each half second took
    a quarter of a second of every round).

    Offsets a processor added to a transaction it has not committed — one killed mid-batch, say — are not yet the
    group's. The question is asked read_uncommitted because librdkafka asks a read_committed consumer's group for
    *stable* offsets, and the coordinator answers a partition with such a pending commit UNSTABLE_OFFSET_COMMIT until
    the transaction ends: after a SIGKILL, until the broker times it out (20 s) or a new instance fences it, so
    the question would time out instead of answering. (A host that resumes from the offsets must ask for stable ones.)
    The consumers never join their groups: they only ask.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._asking: dict[str, Consumer] = {}

    def of(self, group: str, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """``group``'s final offset on each of ``partitions`` (OFFSET_INVALID, negative, where none)."""
        asking = self._asking.get(group)
        if asking is None:
            asking = self._asking[group] = consumer(self._settings, group, **{"isolation.level": "read_uncommitted"})
        committed: list[TopicPartition] = asking.committed(partitions, timeout=30)
        return committed

    def close(self) -> None:
        for asking in self._asking.values():
            asking.close()
        self._asking.clear()

    def __enter__(self) -> FinalCommits:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
