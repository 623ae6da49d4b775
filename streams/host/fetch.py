"""The live input of a hosted processor: fetching, knowing when an input has been read to its end, lag.

The group consumer holds this instance's share of the partitioned inputs; after each (re)assignment the host
rebuilds (``on_assigned``) before anything more is fetched, then ``go_live`` opens the broadcast consumer, which
reads every partition of the broadcast inputs from the least position of this instance's tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from streams.host.config import HostConfig
from streams.host.inputs import Inputs
from streams.host.merge import Source
from streams.kafka import Consumer, KafkaException, KafkaSettings, Message, TopicPartition, consumer
from streams.kafka.logreader import Position, RawRecord
from streams.metrics import ProcessorMetrics

log = logging.getLogger("tradecore.streams")

# Waiting on two consumers: each in turns of _TURN_S, so that a record on either is noticed within that.
_TURN_S = 0.005


class Fetcher:
    """Fetches this instance's input records as they come; calls ``on_assigned`` with the partitions it was given
    and ``on_revoked`` before they are taken away."""

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        config: HostConfig,
        inputs: Inputs,
        metrics: ProcessorMetrics,
        on_assigned: Callable[[list[Position]], None],
        on_revoked: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._group = group
        self._config = config
        self._inputs = inputs
        self._metrics = metrics
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self.group = consumer(
            settings,
            group,
            **{
                "partition.assignment.strategy": "range",
                "auto.offset.reset": "earliest",
                # Static membership: a restarted instance takes its partitions back at once instead of waiting
                # for the killed one's session to time out.
                "group.instance.id": f"{group}-{config.instance}",
                "session.timeout.ms": 15000,
            },
        )
        self._broadcast: Consumer | None = None
        self._assignment: list[Position] = []
        self._rebuild_due = False
        self._starts: dict[Position, int] = {}  # where live reading began, per partition
        self._idle_since: dict[Source, float] = {}
        self._asked_high: dict[Position, tuple[float, int]] = {}
        self._lag_due = 0.0
        self.group.subscribe(inputs.partitioned, on_assign=self._assigned, on_revoke=self._revoked)

    def fetch(self, wait_s: float) -> list[RawRecord]:
        """Every record both consumers hold now; if there is none, wait up to ``wait_s`` for the first to arrive.

        Never waits while anything is there (consume() would wait out its timeout for a full batch). librdkafka
        cannot wait on two consumers at once, so with a broadcast consumer each is waited on in short turns.
        """
        return [
            RawRecord.of(msg)
            for msg in self._messages(wait_s)
            if msg.error() is None and msg.topic() in self._inputs.rank
        ]

    def _messages(self, wait_s: float) -> list[Message]:
        deadline = time.monotonic() + wait_s
        first: list[Message] = []
        batch_max = self._config.batch_max
        while True:
            assigned_before = self._rebuild_due
            messages = list(self.group.consume(batch_max, 0))
            if assigned_before or not self._rebuild_due:
                # A record polled before this consume() assigned anew is dropped: it comes again from the committed
                # offsets. What the consumer returned after an assignment starts there: keep it.
                messages = first + messages
            if self._rebuild_due:
                self._rebuild_due = False
                self._on_assigned(self._assignment)
            if self._broadcast is not None:
                messages += self._broadcast.consume(batch_max, 0)
            left = deadline - time.monotonic()
            if messages or left <= 0:
                return messages
            turn = left if self._broadcast is None else min(left, _TURN_S)
            polled = self.group.poll(turn)
            first = [] if polled is None else [polled]
            if first or self._rebuild_due or self._broadcast is None:
                continue  # drain the rest (and rebuild first if the assignment changed)
            polled = self._broadcast.poll(min(max(deadline - time.monotonic(), 0.0), _TURN_S))
            if polled is not None:
                return [polled, *self._broadcast.consume(batch_max, 0)]

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._assignment = [(p.topic, p.partition) for p in partitions]
        self._rebuild_due = True

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoked()

    # -- what a rebuild needs -------------------------------------------------------------------------------------
    def broadcast_partitions(self) -> list[Position]:
        """Every partition of the broadcast inputs (each instance reads them whole)."""
        return [
            (topic, p)
            for topic in self._inputs.broadcast
            for p in self.group.list_topics(topic, timeout=30).topics[topic].partitions
        ]

    def committed(self, positions: list[Position]) -> dict[Position, int]:
        """The group's committed offset of each partition (0 where none is)."""
        found = self.group.committed([TopicPartition(t, p) for t, p in positions], timeout=30)
        return {(c.topic, c.partition): max(c.offset, 0) for c in found}

    def go_live(self, starts: Mapping[Position, int], broadcast: list[Position]) -> None:
        """Read on from ``starts``: the group's partitions go on where they were assigned, the broadcast ones are
        read from there by a consumer of their own."""
        self._starts = dict(starts)
        if self._broadcast is not None:
            self._broadcast.close()
            self._broadcast = None
        taken = [TopicPartition(t, p, starts[(t, p)]) for t, p in broadcast if (t, p) in starts]
        if taken:  # an instance holding no partition has no use for the broadcast inputs
            self._broadcast = consumer(self._settings, f"{self._group}-broadcast-{self._config.instance}")
            self._broadcast.assign(taken)

    # -- where the inputs stand -----------------------------------------------------------------------------------
    def exhausted(self, source: Source) -> bool:
        """Live: the input has been at the end of its log for its grace period, so the others go on without it."""
        now = time.monotonic()
        if not self.caught_up(source):
            self._idle_since.pop(source, None)
            return False
        rank = source[0]
        grace_ms = self._config.broadcast_grace_ms if self._inputs.is_broadcast(rank) else self._config.grace_ms
        return now - self._idle_since.setdefault(source, now) >= grace_ms / 1000

    def caught_up(self, source: Source) -> bool:
        """Everything the log holds for this input has been fetched (position() steps over commit markers)."""
        rank, partition = source
        topic = self._inputs.topics[rank]
        reader = self._broadcast if self._inputs.is_broadcast(rank) else self.group
        assert reader is not None
        tp = TopicPartition(topic, partition)
        high = self._high_watermark(reader, tp)
        [position] = reader.position([tp])
        # Nothing fetched yet (an empty partition) leaves the position unset: it is where we started.
        at = position.offset if position.offset >= 0 else self._starts.get((topic, partition), 0)
        return high is not None and high >= 0 and at >= high

    def _high_watermark(self, reader: Consumer, tp: TopicPartition) -> int:
        """The partition's end: librdkafka's cached value once a fetch reported it, else asked (and kept briefly)."""
        _, high = reader.get_watermark_offsets(tp, cached=True)
        if high is not None and high >= 0:
            return int(high)
        key, now = (tp.topic, tp.partition), time.monotonic()
        known = self._asked_high.get(key)
        if known is None or now - known[0] > 0.25:
            try:
                _, asked = reader.get_watermark_offsets(tp, timeout=5)
            except KafkaException as err:
                # A broker failing over cannot say where the log ends: the lag metric waits, and a partition whose
                # end is unknown (-1) is not taken as caught up, so no record is released early. Not a reason to
                # stop the worker (tests/deploy/test_broker_loss.py saw risk die here).
                log.warning("end of %s[%d] unknown for now: %s", tp.topic, tp.partition, err)
                return known[1] if known is not None else -1
            known = self._asked_high[key] = (now, int(asked))
        return known[1]

    def observe_lag(self, committed: Mapping[Position, int], settled: bool) -> None:
        """Consumer lag per input partition, at most once a second: the log's end minus the committed offset.

        ``settled``: everything fetched is handled and committed.
        """
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + 1.0
        for (topic, partition), done in committed.items():
            reader = self._broadcast if self._inputs.is_broadcast(self._inputs.rank[topic]) else self.group
            if reader is None:
                continue
            tp = TopicPartition(topic, partition)
            high = self._high_watermark(reader, tp)
            if high < 0:
                continue
            behind = max(high - done, 0)
            # Transactional inputs end in a commit marker past their last record: once settled, a partition
            # fetched to its end has no lag, whatever the marker's offset.
            if behind and settled and reader.position([tp])[0].offset >= high:
                behind = 0
            self._metrics.lag(topic, partition, behind)

    def close(self) -> None:
        self.group.close()
        if self._broadcast is not None:
            self._broadcast.close()
