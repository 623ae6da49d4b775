"""The live input of a hosted processor: fetching, knowing when an input has been read to its end, lag.

Which partitions an instance holds is decided by the consumer group over the *lead* input (the first partitioned
one) alone; partition ``p`` of the other partitioned inputs goes with the lead's partition ``p`` (they are
co-partitioned: one task takes them together). Kafka's assignors balance topic-partitions, not partition numbers —
cooperative-sticky, given all three of risk's inputs, split one task's partitions among instances — so the group
sees only the lead, as Kafka Streams' own assignor sees tasks. The peers are read by a second consumer, assigned
by hand, beside the broadcast inputs; their offsets are still committed as the group's, in each transaction.

The group's assignment is cooperative-sticky (incremental): a rebalance takes away only the partitions that move
(``on_revoked`` is called with them before they go, while this instance still owns them in the group's generation)
and adds only the new ones; every other partition stays assigned and keeps being fetched. After each change the
host rebuilds what it must (``on_assigned``) before anything more is fetched, then ``go_live`` puts the lead
partitions back where the host's state stands and opens the second consumer from there: peers from the same
committed offsets, broadcast inputs from the least position of this instance's tasks. Partitions lost without a
revocation (this member was dropped from the group) cannot be committed for any more: the host starts over
(``StartOver``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from itertools import groupby
from operator import itemgetter, lt

from streams.host.config import HostConfig
from streams.host.inputs import Inputs
from streams.host.merge import Source
from streams.host.transaction import StartOver
from streams.kafka import Consumer, KafkaError, KafkaException, KafkaSettings, Message, TopicPartition, consumer
from streams.kafka.logreader import RUN_OF, Position, RawRecord, raw_records
from streams.metrics import ProcessorMetrics
from streams.runtime.logs import FailuresThinned

log = logging.getLogger("tradecore.streams")
# A consumer error librdkafka retries on its own: said once a minute per member and kind, with the count held back.
log.addFilter(FailuresThinned("%s: the consumer reports %s", key_args=2, every_s=60.0))

# Static membership: an instance restarted under the same --instance within this long takes its partitions back
# without a rebalance (a SIGKILLed worker's supervisor restarts it in seconds); one gone for longer has its
# partitions moved to the others.
SESSION_TIMEOUT_MS = 20000

# Waiting on two consumers (librdkafka cannot wait on both at once): in turns, _LEAD_TURN_S on the lead input's and
# _SIDE_TURN_S on the other's, so that a record on either is noticed within the other's turn. The lead input carries
# the commands a caller waits on (orders for risk, checked orders for the venue): with equal 5 ms turns an order
# waited 2.7 ms at the median for the side's turn to end (bench/host_latency.py at 100/s); the side's records (fills,
# positions, ticks) wait as long as they did at most, a little longer on average.
_LEAD_TURN_S = 0.005
_SIDE_TURN_S = 0.001
# librdkafka waits in whole milliseconds and confluent-kafka rounds a timeout down to them: asked to wait the last
# fraction of a millisecond before a fetch's deadline, a consumer answers at once, and a loop asking again until the
# deadline spun through that fraction — ≈ 150 empty polls a wait, a hundredth of a core for every idle host
# (docs/PERFORMANCE.md, "Stop 46"). A wait with less than this left ends there.
_POLL_RESOLUTION_S = 0.001
_LEAVE_S = 10.0  # how long a host starting over waits for its consumer to leave the group
# Asking the group's committed offsets on an assignment: a read_committed consumer asks for stable ones (KIP-447), and
# the coordinator answers no partition whose offsets an open transaction holds until that transaction ends — a
# stopped instance's until the broker aborts it (its transaction.timeout.ms, 20 s, and the broker's check every
# 10 s), while the partition is already another's. Asked again each _ASK_COMMITTED_S, for up to stall_ms.
_ASK_COMMITTED_S = 30.0
_ASK_S = 5.0  # how long the watchdog's look-up of a partition's end may wait
OFFSET = itemgetter(2)  # a RawRecord's offset


class Fetcher:
    """Fetches this instance's input records as they come; calls ``on_assigned`` with all the partitions it holds
    once its assignment changed, and ``on_revoked`` before any are taken away."""

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        config: HostConfig,
        inputs: Inputs,
        metrics: ProcessorMetrics,
        on_assigned: Callable[[list[Position]], None],
        on_revoked: Callable[[list[Position]], None],
    ) -> None:
        self._settings = settings
        self._group = group
        self._member = f"{group}-{config.instance}"  # its static id in the group, and its name in the log
        self._config = config
        self._inputs = inputs
        self._metrics = metrics
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self.group = consumer(
            settings,
            group,
            **{
                # Incremental: a rebalance moves only the partitions that change owner; the others run on.
                "partition.assignment.strategy": "cooperative-sticky",
                "auto.offset.reset": "earliest",
                # Static membership: a restarted instance takes its partitions back at once instead of waiting
                # for the killed one's session to time out (the id is the processor's group and --instance).
                "group.instance.id": self._member,
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                # A revocation reaches the host through the consumer's queue, behind every record prefetched before
                # it: with librdkafka's defaults (100,000 records a partition, 64 MB) a busy instance worked through
                # a whole backlog before letting a joiner have its share. A few batches ahead are enough: at 256 kB
                # (1,400 ticks) signals' host, taking runs as frames, waited 16 % of its time on an empty queue.
                "queued.min.messages": config.batch_max,
                "queued.max.messages.kbytes": 1024,
            },
        )
        self._lead = inputs.partitioned[0]
        self._side: Consumer | None = None  # the peers of the lead's partitions and the broadcast inputs
        self._assignment: set[Position] = set()  # the lead's partitions
        self._rebuild_due = False
        self._lost: list[Position] = []
        self.assigned_at = 0.0  # when the last partitions were added (monotonic clock): live is timed from there
        self._starts: dict[Position, int] = {}  # where live reading began, per partition
        self._taken: dict[Position, int] = {}  # per partition: past the last record taken since going live
        self._arrived: dict[Source, float] = {}  # when a record of each input partition last came
        self._live_at = 0.0  # when live reading last began: an input nothing came of since has sat at its end since
        self._asked_high: dict[Position, tuple[float, int]] = {}
        self._lag_due = 0.0
        self.joined = False  # the group has given this member an assignment (an empty one too)
        # The last fetch took every record both consumers held (fewer than a full batch of each): what comes next
        # is not there yet. Under a steady stream that is every pass; taking a backlog, none.
        self.drained = True
        self.group.subscribe(
            [self._lead], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost_partitions
        )

    def fetch(self, wait_s: float) -> list[RawRecord]:
        """Every record both consumers hold now; if there is none, wait up to ``wait_s`` for the first to arrive.

        Never waits while anything is there (consume() would wait out its timeout for a full batch). librdkafka
        cannot wait on two consumers at once, so with the second consumer each is waited on in short turns.
        """
        messages = self._messages(wait_s)
        records = raw_records(messages)
        if len(records) < len(messages):
            for msg in messages:
                error = msg.error()
                if error is not None:
                    self._failed(error)
        rank = self._inputs.rank
        records = [record for record in records if record.topic in rank]
        return self._taken_once(records) if records else records

    def _taken_once(self, records: list[RawRecord]) -> list[RawRecord]:
        """``records`` less any at an offset this instance took before since going live (none, unless a consumer
        rewinds on its own); notes when each input partition last gave a record.

        Exactly-once rests on each record being handled once per go-live, and librdkafka has re-delivered records
        after pause/resume/seek more than once in its history (confluentinc/librdkafka#2593, #4637, #4686): what
        comes again is dropped, counted (``tradecore_refetched_records``) and said. Checked a run of one partition
        at a time, in C (``map``) but for the rare run that goes back."""
        now, arrived, rank, taken = time.monotonic(), self._arrived, self._inputs.rank, self._taken
        ends: dict[Position, int] = {}
        for position, run in groupby(records, RUN_OF):
            offsets = list(map(OFFSET, run))
            if offsets[0] < ends.get(position, taken.get(position, 0)) or not all(map(lt, offsets, offsets[1:])):
                return self._drop_taken(records, now)
            ends[position] = offsets[-1] + 1
            arrived[(rank[position[0]], position[1])] = now
        taken.update(ends)
        return records

    def _drop_taken(self, records: list[RawRecord], now: float) -> list[RawRecord]:
        """``_taken_once`` record by record, for a fetch in which some partition went back."""
        taken, rank = self._taken, self._inputs.rank
        kept: list[RawRecord] = []
        again: dict[Position, list[int]] = {}
        for record in records:
            position = (record.topic, record.partition)
            self._arrived[(rank[record.topic], record.partition)] = now
            if record.offset < taken.get(position, 0):
                again.setdefault(position, []).append(record.offset)
            else:
                taken[position] = record.offset + 1
                kept.append(record)
        for (topic, partition), offsets in again.items():
            self._metrics.refetched(topic, len(offsets))
            log.warning(
                "%s: dropped %d records of %s[%d] handed over again (offsets %d..%d, already taken to %d)",
                self._member,
                len(offsets),
                topic,
                partition,
                min(offsets),
                max(offsets),
                taken[(topic, partition)] - 1,
            )
        return kept

    def _failed(self, error: KafkaError) -> None:
        """An error a consumer handed over instead of a record: a fatal one (the client is of no further use —
        a static member fenced, say) starts the host over with new clients; any other is said, once a minute per
        kind at most (librdkafka retries it; the log's filter counts the rest)."""
        if error.fatal():
            raise StartOver(f"the consumer failed: {error.str()}")
        log.warning("%s: the consumer reports %s: %s (retrying)", self._member, error.name(), error.str())

    def _messages(self, wait_s: float) -> list[Message]:
        deadline = time.monotonic() + wait_s
        first: list[Message] = []
        batch_max = self._config.batch_max
        while True:
            messages = first + list(self.group.consume(batch_max, 0))
            self.drained = len(messages) < batch_max
            if self._lost:
                raise StartOver(f"partitions {sorted(self._lost)} were lost to the group (this member was dropped)")
            if self._rebuild_due:
                # go_live puts every partition back where the host's state stands: what was fetched before comes
                # again from there (and a revoked partition's records are its new owner's).
                self._rebuild_due = False
                messages = []
                self._on_assigned(self._held(self._assignment))
            if self._side is not None:
                side = self._side.consume(batch_max, 0)
                self.drained &= len(side) < batch_max
                messages += side
            left = deadline - time.monotonic()
            if messages or left < _POLL_RESOLUTION_S:
                return messages
            turn = left if self._side is None else min(left, _LEAD_TURN_S)
            polled = self.group.poll(turn)
            first = [] if polled is None else [polled]
            if first or self._rebuild_due or self._lost or self._side is None:
                continue  # drain the rest (and rebuild first if the assignment changed)
            polled = self._side.poll(min(max(deadline - time.monotonic(), 0.0), _SIDE_TURN_S))
            if polled is not None:
                rest = self._side.consume(batch_max, 0)
                self.drained = len(rest) < batch_max
                return [polled, *rest]

    def _assigned(self, group: Consumer, partitions: list[TopicPartition]) -> None:
        group.incremental_assign(partitions)
        self.joined = True
        if partitions:
            log.info("%s: assigned %s of %s", self._member, sorted(p.partition for p in partitions), self._lead)
            self._assignment |= {(p.topic, p.partition) for p in partitions}
            self._rebuild_due = True
            self.assigned_at = time.monotonic()

    def _revoked(self, group: Consumer, partitions: list[TopicPartition]) -> None:
        # Still ours until this returns: the host commits (or, failing, aborts) what it took of them first.
        log.info("%s: revoked %s of %s", self._member, sorted(p.partition for p in partitions), self._lead)
        try:
            self._on_revoked(self._held({(p.topic, p.partition) for p in partitions}))
        finally:  # (a commit that failed still gives them up: the group goes on only once they are unassigned)
            group.incremental_unassign(partitions)
            self._assignment -= {(p.topic, p.partition) for p in partitions}
            self._rebuild_due = True

    def _lost_partitions(self, group: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may own them already: nothing taken of them may be committed now (the group generation
        # in send_offsets_to_transaction would refuse it anyway).
        group.incremental_unassign(partitions)
        self._assignment -= {(p.topic, p.partition) for p in partitions}
        self._lost += [(p.topic, p.partition) for p in partitions]

    def holds_any(self) -> bool:
        """Whether the group gave this instance any partition."""
        return bool(self._assignment)

    def _held(self, lead: set[Position]) -> list[Position]:
        """The partitions of every partitioned input that go with the lead's partitions ``lead``."""
        return sorted((topic, p) for _, p in lead for topic in self._inputs.partitioned)

    # -- what a rebuild needs -------------------------------------------------------------------------------------
    def broadcast_partitions(self) -> list[Position]:
        """Every partition of the broadcast inputs (each instance reads them whole)."""
        return [
            (topic, p)
            for topic in self._inputs.broadcast
            for p in self.group.list_topics(topic, timeout=30).topics[topic].partitions
        ]

    def committed(self, positions: list[Position]) -> dict[Position, int]:
        """The group's committed offset of each partition (0 where none is), once no open transaction holds them.

        Raises:
            StartOver: not answered within ``stall_ms`` (``_ASK_COMMITTED_S``).
        """
        asked = [TopicPartition(t, p) for t, p in positions]
        give_up = time.monotonic() + self._config.stall_ms / 1000
        while True:
            try:
                found = self.group.committed(asked, timeout=_ASK_COMMITTED_S)
                return {(c.topic, c.partition): max(c.offset, 0) for c in found}
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._TIMED_OUT:
                    raise
                if time.monotonic() >= give_up:
                    raise StartOver(
                        f"the group's committed offsets were not answered within {self._config.stall_ms // 1000} s"
                    ) from exc
                log.warning(
                    "%s: the group's committed offsets of %s are not answered yet: an open transaction holds them "
                    "(a stopped instance's, until the broker aborts it) or the coordinator is away; asking again",
                    self._member,
                    sorted({p for _, p in positions}),
                )

    def go_live(self, starts: Mapping[Position, int], broadcast: list[Position]) -> None:
        """Read on from ``starts``: the lead's partitions from there (those that stayed assigned too: records
        fetched past it were dropped), their peers and the broadcast inputs by a consumer of their own."""
        self._starts = dict(starts)
        self._taken = dict(starts)
        self._live_at = time.monotonic()
        self._arrived.clear()  # (what came before was dropped: it comes again from ``starts``)
        # (a partition that stayed assigned may have been paused for the merger before: it starts afresh)
        self.group.resume([TopicPartition(t, p) for t, p in sorted(self._assignment)])
        for t, p in sorted(self._assignment):
            self.group.seek(TopicPartition(t, p, starts[(t, p)]))
        if self._side is not None:
            self._side.close()
            self._side = None
        peers = [(t, p) for t, p in self._held(self._assignment) if t != self._lead]
        taken = [TopicPartition(t, p, starts[(t, p)]) for t, p in peers + broadcast if (t, p) in starts]
        if taken:  # an instance holding no partition has no use for the broadcast inputs
            # Prefetch bounded as the group's is (by bytes here: a dozen partitions of peers and broadcast inputs at
            # librdkafka's 64 MB each held a host catching up on a backlog at 1.5 GB).
            self._side = consumer(
                self._settings, f"{self._group}-side-{self._config.instance}", **{"queued.max.messages.kbytes": 4096}
            )
            self._side.assign(taken)

    # -- where the inputs stand -----------------------------------------------------------------------------------
    def exhausted(self, source: Source) -> bool:
        """Live: the input has sat at the end of its log for its grace period — read to its end, and nothing of it
        came for that long — so the others go on without it.

        Timed from its last record's coming, not from when the merger ran out of its records: taking a backlog, a
        partition's last records are fetched well before their turn, and a clock started once they were taken made
        every other input wait a grace period more at each partition's end (risk's host waited 0.9 s of 4.2 s so)."""
        if not self.caught_up(source):
            return False
        grace_ms = self._config.broadcast_grace_ms if self._inputs.is_broadcast(source[0]) else self._config.grace_ms
        return time.monotonic() - self._arrived.get(source, self._live_at) >= grace_ms / 1000

    def caught_up(self, source: Source) -> bool:
        """Everything the log holds for this input has been fetched (position() steps over commit markers)."""
        reader, tp = self._reader_of(source)
        high = self._high_watermark(reader, tp)
        return high is not None and high >= 0 and self._fetched_to(reader, tp) >= high

    def pause(self, source: Source) -> None:
        """Fetch no more of ``source`` until ``resume`` (enough of it waits in the merger)."""
        reader, tp = self._reader_of(source)
        reader.pause([tp])

    def resume(self, source: Source) -> None:
        reader, tp = self._reader_of(source)
        reader.resume([tp])

    def _reader_of(self, source: Source) -> tuple[Consumer, TopicPartition]:
        """The consumer that fetches ``source``, and its partition."""
        rank, partition = source
        topic = self._inputs.topics[rank]
        reader = self.group if topic == self._lead else self._side
        assert reader is not None
        return reader, TopicPartition(topic, partition)

    def unfetched(self) -> list[str]:
        """The partitions this instance holds whose log goes on past what it has fetched, each as
        ``topic[p]: position/end``, and those whose end the brokers cannot say: what a consumer that stopped fetching
        leaves unread, or may. The first end that cannot be learnt ends the list: one is enough to say the inputs may
        hold records, and with a wedged client each ask may wait out its timeout (``_ASK_S``: risk's two dozen input
        partitions would keep one check busy for two minutes)."""
        readers = [(self.group, sorted(self._assignment))]
        if self._side is not None:
            readers.append((self._side, sorted((tp.topic, tp.partition) for tp in self._side.assignment())))
        out: list[str] = []
        for reader, positions in readers:
            for topic, partition in positions:
                tp = TopicPartition(topic, partition)
                try:  # asked, not cached: a consumer that fetches nothing keeps its cached end as it was
                    _, high = reader.get_watermark_offsets(tp, timeout=_ASK_S)
                except KafkaException as err:  # a broker failing over, or a client wedged: not proof of idleness
                    return [*out, f"{topic}[{partition}]: end unknown ({err.args[0].str()})"]
                at = self._fetched_to(reader, tp)
                if 0 <= at < high:
                    out.append(f"{topic}[{partition}]: {at}/{high}")
        return out

    def _fetched_to(self, reader: Consumer, tp: TopicPartition) -> int:
        """The offset after the last record ``reader`` fetched of ``tp`` (position() steps over commit markers)."""
        [position] = reader.position([tp])
        # Nothing fetched yet (an empty partition) leaves the position unset: it is where we started.
        return int(position.offset) if position.offset >= 0 else self._starts.get((tp.topic, tp.partition), 0)

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
            reader = self.group if topic == self._lead else self._side
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

    def close(self, *, leave: bool = False) -> None:
        """Close both consumers. ``leave``: leave the group first, so that it rebalances at once.

        Closing alone, a static member stays in the group (its partitions wait ``session.timeout.ms`` for the
        same instance to come back), and the consumer that comes back under its id is handed the assignment the
        group last gave it, with no rebalance. That is right for a process restarting; not for a host starting
        over because its standing in the group is in doubt: come-and-go saw execution-0's revocation commit
        refused (ILLEGAL_GENERATION) mid-rebalance, its new consumer handed back half the partitions, and the
        joiner the other half was meant for hold none for good, as the rebalance that would move them never came.
        """
        try:
            if leave:
                # librdkafka sends a static member's LeaveGroup once its partitions are unassigned, unless it is
                # closing by then: the revocation is served here, until it drops its member id as it sends the
                # request (the close then waits for the answer).
                self.group.unsubscribe()
                deadline = time.monotonic() + _LEAVE_S
                while self.group.memberid() and time.monotonic() < deadline:
                    self.group.poll(0.05)
        finally:  # (a leave that failed is a session timeout later: the consumers are closed all the same)
            self.group.close()
            if self._side is not None:
                self._side.close()
