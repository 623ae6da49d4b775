"""Run a processor exactly once over Kafka.

Each batch is one Kafka transaction holding the batch's outputs, its dead letters and the input offsets it
consumed, so a crash anywhere leaves no duplicate and no gap for ``read_committed`` readers
(``streams.host.transaction``). A batch is committed as soon as the input goes idle (a pass finds nothing more to
take), else after ``batch_ms`` or ``batch_max`` records: a lone record's outputs are visible at once, a backlog is
taken in large transactions. The processor's state lives only in memory: on (re)assignment the host replays the
inputs from the beginning up to the committed offsets (``streams.host.rebuild``) — the log is the store.

The parts: ``Fetcher`` (``streams.host.fetch``) fetches the live input and says when an input is at its end;
``RecordHandler`` (``streams.host.handler``) applies the processor to a record; ``HostTransaction`` holds the open
batch; ``Rebuild`` folds the log into fresh state. A transaction that cannot be settled makes the host drop
producer, consumer and state, and start over from the committed offsets with a new producer — whose
``init_transactions`` fences the old one and settles its transaction.

One instance per processor when it has broadcast inputs: their positions are committed in the processor's group.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from schemas.registry import SchemaRegistry
from streams.host.config import HostConfig, HostStats
from streams.host.fetch import Fetcher
from streams.host.handler import RecordHandler
from streams.host.inputs import Inputs
from streams.host.processor import Processor
from streams.host.rebuild import Rebuild
from streams.host.transaction import HostTransaction, StartOver
from streams.kafka import KafkaSettings, tracing
from streams.kafka.logreader import Position
from streams.metrics import ProcessorMetrics

__all__ = ["HostConfig", "HostStats", "ProcessorHost"]

log = logging.getLogger("tradecore.streams")

# Waiting for input: with nothing buffered, up to _IDLE_WAIT_S (a poll returns on the first record); with records
# held by the merger, _HELD_WAIT_S, so that a grace period ending is noticed promptly.
_IDLE_WAIT_S = 0.05
_HELD_WAIT_S = 0.005


class ProcessorHost:
    def __init__(
        self,
        processor: Processor,
        settings: KafkaSettings,
        registry: SchemaRegistry,
        config: HostConfig | None = None,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.config = config or HostConfig()
        self.inputs = settings.topic_prefix if self.config.input_prefix is None else self.config.input_prefix
        self.outputs = settings.topic_prefix if self.config.output_prefix is None else self.config.output_prefix
        self.group = f"{self.outputs}{processor.name}"
        self.stats = HostStats()
        self.metrics = ProcessorMetrics(processor.name, self.inputs, self.outputs)
        self.topics = Inputs(self.inputs, processor.partitioned, processor.broadcast)
        # Only several inputs leave a choice of order to remember.
        self.journal = f"{self.outputs}{processor.name}.journal" if len(self.topics.topics) > 1 else None
        self.handler = RecordHandler(processor, self.topics, self.outputs, registry, self.stats, self.metrics)
        self.rebuild = Rebuild(
            settings,
            f"{self.group}-{{}}-{self.config.instance}",
            self.topics,
            self.journal,
            self.config.batch_max,
            lambda record: self.handler.handle(record, None),
        )

    def run(self, stop: threading.Event, on_idle: Callable[[], None] | None = None) -> None:
        """Process until ``stop`` is set; commits what is in flight before returning."""
        while not stop.is_set():
            try:
                _Session(self).run(stop, on_idle)
            except StartOver as why:
                self.stats.restarts += 1
                self.metrics.restarted()
                log.warning("%s: starting over from the committed offsets: %s", self.processor.name, why)


class _Session:
    """One producer and one consumer, from a rebuild on the first assignment until ``stop`` or ``StartOver``."""

    def __init__(self, host: ProcessorHost) -> None:
        self._host = host
        self._config = host.config
        self._txn = HostTransaction(
            host.settings,
            f"{host.group}-{host.config.instance}",
            host.processor.name,
            host.journal,
            host.inputs,
            host.metrics,
        )
        self._merger = host.topics.merger(set())
        self._fetcher = Fetcher(
            host.settings,
            host.group,
            host.config,
            host.topics,
            host.metrics,
            on_assigned=self._rebuild,
            on_revoked=self._revoked,
        )
        host.handler.tracing = tracing.recording()

    def run(self, stop: threading.Event, on_idle: Callable[[], None] | None) -> None:
        try:
            while not stop.is_set():
                records = self._fetcher.fetch(self._wait_s())
                for record in records:
                    self._merger.add(self._host.topics.stamped(record))
                processed = 0
                for stamped in self._merger.release(self._fetcher.exhausted, self._fetcher.caught_up):
                    self._host.handler.handle(stamped.item, self._txn)
                    processed += 1
                    if self._txn.taken >= self._config.batch_max:
                        self._commit()  # bounded transactions; the merger keeps the rest in order
                # Commit once the input goes idle (nothing more was there to take) — what is processed becomes
                # visible at once — or when the batch has been open batch_ms while records keep coming.
                if self._txn.open and (
                    not records or time.monotonic() - self._txn.opened > self._config.batch_ms / 1000
                ):
                    self._commit()
                self._fetcher.observe_lag(self._txn.committed, not self._txn.open and self._merger.buffered() == 0)
                if not records and not processed and on_idle is not None:
                    on_idle()
            if self._txn.open:
                self._commit()
        finally:
            self._fetcher.close()
            self._txn.close()

    def _wait_s(self) -> float:
        """How long the next fetch may wait for a first record."""
        if self._txn.open:
            return 0.0  # records came in the last pass: take what else is there, or commit
        if self._merger.buffered():
            return _HELD_WAIT_S  # records wait on a grace period: look again soon
        return _IDLE_WAIT_S

    def _commit(self) -> None:
        self._txn.commit(self._fetcher.group)
        self._host.stats.commits += 1

    def _revoked(self) -> None:
        if self._txn.open:
            self._commit()
        self._merger = self._host.topics.merger(set())

    def _rebuild(self, assignment: list[Position]) -> None:
        """Fold the inputs from the beginning up to the committed offsets into fresh state, then go live."""
        host = self._host
        host.processor.reset()
        broadcast = self._fetcher.broadcast_partitions()
        owned = assignment + broadcast
        stops = self._fetcher.committed(owned)
        sources = {(host.topics.rank[t], p) for t, p in owned}
        self._txn.committed = dict(stops)
        host.metrics.forget_lag()
        replayed = host.rebuild.replay(stops, sources)
        host.stats.replayed += replayed
        host.metrics.replayed(replayed)
        self._merger = host.topics.merger(sources)
        self._fetcher.go_live(stops, broadcast)
        log.info("%s: rebuilt state from %d records; live from %s", host.processor.name, replayed, stops)
