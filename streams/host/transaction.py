"""The host's open batch: one Kafka transaction holding a batch's outputs, its dead letters, the input offsets it
consumed and (with several inputs) its journal entry — the order it took its records in.

Commits follow ``streams.kafka.transactions``: a transaction that cannot be settled raises ``StartOver``, and the
host drops producer, consumer and state and rebuilds from the committed offsets with a new producer.
"""

from __future__ import annotations

import json
import time
from typing import Any

from streams.kafka import Consumer, KafkaSettings
from streams.kafka.logreader import Position, RawRecord
from streams.kafka.transactions import TransactionalProducer, TransactionUnsettled
from streams.metrics import ProcessorMetrics


class StartOver(Exception):
    """What is in memory cannot be trusted to match the committed log: rebuild from the committed offsets."""


class HostTransaction:
    """Begins on the first record taken; ``commit`` writes its offsets (and journal entry) and settles it.

    Parameters:
        settings: where Kafka is.
        transactional_id: the host's slot (group and instance): a restarted instance fences its predecessor.
        name: the processor's, for the logs.
        journal: the processor's journal topic, or None when it has one input (no choice of order to remember).
        inputs_prefix: the inputs' namespace, left out of the journal's topic names.
        metrics: where commits and aborts are counted.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        name: str,
        journal: str | None,
        inputs_prefix: str,
        metrics: ProcessorMetrics,
    ) -> None:
        self._producer = TransactionalProducer(
            settings,
            transactional_id,
            name,
            **{
                "transaction.timeout.ms": 60000,
                "linger.ms": 2,
                # After a commit the next transaction's first request is refused (CONCURRENT_TRANSACTIONS) until the
                # broker has written the commit markers, usually within a few ms: retried after the default 100 ms,
                # that wait was the largest part of the host's p99 at 1,000 orders/s (docs/PERFORMANCE.md).
                "retry.backoff.ms": 5,
            },
        )
        self._journal = journal
        self._prefix = inputs_prefix
        self._metrics = metrics
        self.opened = 0.0  # when the open transaction began (monotonic clock)
        self.taken = 0  # input records it holds
        self.committed: dict[Position, int] = {}  # per input partition, the offset committed last
        self._staged: dict[Position, int] = {}
        self._runs: list[list[Any]] = []  # the journal entry: [topic, partition, count] runs, in the order taken

    @property
    def open(self) -> bool:
        return self._producer.open

    def take(self, record: RawRecord) -> None:
        """Count ``record`` as consumed in this transaction (beginning it if none is open)."""
        if not self._producer.open:
            self._producer.begin()
            self.opened, self.taken = time.monotonic(), 0
        self.taken += 1
        position = (record.topic, record.partition)
        self._staged[position] = record.offset + 1
        if self._journal is not None:
            name = record.topic[len(self._prefix) :]
            if self._runs and self._runs[-1][0] == name and self._runs[-1][1] == record.partition:
                self._runs[-1][2] += 1
            else:
                self._runs.append([name, record.partition, 1])

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        self._producer.send(topic, key, value, timestamp, headers)

    def commit(self, group: Consumer) -> None:
        """Commit the open transaction with the offsets taken, as ``group``'s.

        Raises:
            StartOver: it could not be settled.
        """
        if self._journal is not None and self._runs:
            entry = json.dumps(self._runs, separators=(",", ":")).encode()
            self._producer.send(self._journal, None, entry, 0, partition=0)
        try:
            self._producer.commit(self._staged, group)
        except TransactionUnsettled as unsettled:
            if unsettled.aborted:
                self._metrics.transaction("aborted")
            raise StartOver(str(unsettled)) from unsettled
        self.committed.update(self._staged)
        self._staged = {}
        self._runs = []
        self._metrics.transaction("committed")

    def close(self) -> None:
        self._producer.close()
