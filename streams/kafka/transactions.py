"""Kafka transactions under one commit policy, shared by the processor host and the live-venue adapter.

The policy
    * A commit whose outcome is unknown (a timeout) or that failed with a retriable error is retried, up to
      ``COMMIT_ATTEMPTS`` times, and never aborted: after a timeout the broker may already have committed, and an
      abort would then be refused or, worse, leave the caller believing its outputs were never written.
    * An error that requires an abort (``txn_requires_abort``) is aborted: the broker has not committed anything.
    * Either way, a transaction that could not be settled raises ``TransactionUnsettled``: the caller drops
      everything it derived since its last commit and starts over from what the log holds, with a new producer.
      The new producer's ``init_transactions`` fences the old one (the same ``transactional.id``) and settles
      whatever it left open, so no zombie writes after that point. A fenced producer is unsettled the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.errors import StreamsError
from streams.kafka.clients import producer
from streams.kafka.settings import KafkaSettings

log = logging.getLogger("tradecore.streams")

COMMIT_ATTEMPTS = 5
TIMEOUT_S = 60


class TransactionUnsettled(StreamsError):
    """A transaction could not be settled: start over from the committed log with a new producer."""

    def __init__(self, message: str, *, aborted: bool) -> None:
        super().__init__(message)
        self.aborted = aborted  # the broker was told to abort it (else its outcome may be unknown)


class TransactionalProducer:
    """One transactional producer: ``begin``, ``send`` records, ``commit`` them (with input offsets) as one.

    Parameters:
        settings: where Kafka is.
        transactional_id: stable per writer slot: a restarted writer with the same id fences its predecessor.
        name: who writes, for the logs.
        overrides: producer settings beside the project's idempotent defaults.
    """

    def __init__(self, settings: KafkaSettings, transactional_id: str, name: str, **overrides: Any) -> None:
        self.name = name
        self.open = False  # a transaction has begun and is not yet committed
        self._producer = producer(settings, **{"transactional.id": transactional_id, **overrides})
        self._producer.init_transactions(TIMEOUT_S)  # fences an earlier writer and settles what it left open

    def begin(self) -> None:
        self._producer.begin_transaction()
        self.open = True

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int = -1,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Add a record to the open transaction (waiting for room when the local queue is full); ``on_delivery``
        is called with its offset once the broker has it (by ``flush``, at the latest by ``commit``)."""
        extra: dict[str, Any] = {} if on_delivery is None else {"on_delivery": on_delivery}
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, timestamp=timestamp, partition=partition, **extra
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def flush(self) -> None:
        """Wait until the broker has every record sent so far (their delivery callbacks called); the transaction
        stays open."""
        self._producer.flush(TIMEOUT_S)

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None, group: Consumer | None = None) -> None:
        """Commit what was sent, and ``offsets`` as ``group``'s consumed positions in the same transaction.

        Raises:
            TransactionUnsettled: under the policy of this module; the producer is of no further use.
        """
        try:
            if offsets is not None and group is not None:
                positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
                self._producer.send_offsets_to_transaction(positions, group.consumer_group_metadata(), TIMEOUT_S)
            for attempt in range(COMMIT_ATTEMPTS):
                try:
                    self._producer.commit_transaction(TIMEOUT_S)
                    break
                except KafkaException as exc:
                    error: KafkaError = exc.args[0]
                    if not error.retriable() or attempt == COMMIT_ATTEMPTS - 1:
                        raise
                    log.warning("%s: commit not settled (%s); retrying, never aborting", self.name, error)
        except KafkaException as exc:
            error = exc.args[0]
            aborted = bool(error.txn_requires_abort())
            if aborted:
                self._producer.abort_transaction(TIMEOUT_S)
            raise TransactionUnsettled(str(error), aborted=aborted) from exc
        self.open = False

    def close(self, timeout_s: float = 10) -> None:
        """Wait up to ``timeout_s`` for queued records to be delivered (an open transaction is left to be fenced)."""
        self._producer.flush(timeout_s)
