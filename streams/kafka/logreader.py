"""Reading topics from given offsets, as plain records: the one reader of projections, rebuilds, replays and audits.

A ``LogReader`` assigns partitions itself (no consumer group: its readers keep their positions elsewhere, e.g. in
the same Postgres transaction as the rows they derive, or in a processor's committed offsets), reads
``read_committed`` in batches, and knows where each partition ends. ``read`` is the bounded read everyone shares:
these partitions, from where they were assigned up to these offsets, in batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from confluent_kafka import IsolationLevel, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import OffsetSpec
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from streams.errors import StreamsError
from streams.kafka.clients import consumer, renew_shared_admin, shared_admin
from streams.kafka.settings import KafkaSettings

Position = tuple[str, int]  # (full topic name, partition)


class LogEndUnknown(StreamsError):
    """Kafka did not say where the partitions end within the time given (brokers down, or leaders moving)."""


class ReadStalled(StreamsError):
    """``LogReader.read`` made no progress for the ``stall_s`` it was given."""


class RawRecord(NamedTuple):
    """A record as fetched: immutable, and a tuple so that making one per record costs a third of a frozen dataclass
    (0.28 against 0.84 µs, the largest share of a replay's per-record Python after the decode)."""

    topic: str  # the full name, prefix included
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None  # W3C traceparent among them, when the writer was traced


def raw_records(messages: Iterable[Message]) -> list[RawRecord]:
    """The records among what a consumer returned (the messages without an error), in order.

    One comprehension making each tuple with ``tuple.__new__``: the named tuple's own constructor and a classmethod
    around it were two Python calls a record, a third of the time (0.52 against 0.34 µs; a replay's largest share
    of per-record Python after the decode)."""
    new = tuple.__new__
    return [
        new(RawRecord, (m.topic(), m.partition(), m.offset(), m.timestamp()[1], m.key(), m.value(), m.headers()))
        for m in messages
        if m.error() is None
    ]


RUN_OF = itemgetter(0, 1)
"""A RawRecord's (topic, partition): what a fetched batch's runs of one partition are grouped by."""

BOUNDED: dict[str, object] = {
    # The broker answers a fetch that finds nothing at once instead of holding it for 500 ms: a bounded read ends in
    # such fetches (commit markers past its last record, a partition read to its stop), one per pass.
    "fetch.wait.max.ms": 20,
    # Prefetch at most 4 MB a partition (librdkafka's default, 64 MB and 100,000 records a partition, held a reader of
    # a dozen partitions' backlog at a gigabyte).
    "queued.max.messages.kbytes": 4096,
}
"""Overrides for a ``LogReader`` that reads up to known offsets and stops (a rebuild, a checkpoint)."""


# One ListOffsets at a time through the process's shared admin client, as a precaution: a fresh-clone `make test` died
# of a segmentation fault inside confluent-kafka 2.16.1's `AdminClient.list_offsets` while a verify run's hosts brought
# their tasks up side by side, several threads calling it on the one client at once (and two closing consumers). Not
# reproduced alone (8 threads x 300 calls; with consumers opened, read and closed and collections run beside them).
# Serialized, a restart's six look-ups wait a few milliseconds more (1-7 ms each).
_LIST_OFFSETS = threading.Lock()


class LogReader:
    """Reads partitions from start offsets; ``seek`` moves them; ``ends`` says where each one ends now."""

    def __init__(self, settings: KafkaSettings, name: str, **overrides: object) -> None:
        self._settings = settings
        self._consumer = consumer(settings, f"{name}-unused-group", **overrides)
        self._starts: dict[Position, int] = {}
        # What ``read`` has left: per partition, the next offset to read and the offset it stops at.
        self._next: dict[Position, int] = {}
        self._stops: dict[Position, int] = {}
        self._asked: dict[Position, int] = {}  # the stops as asked, before ``end`` cut any short
        self._held: set[Position] = set()  # paused by ``hold``: not resumed when ``read`` fetches more

    def partitions(self, topics: Iterable[str], timeout_s: float = 30) -> list[Position]:
        """Every partition of ``topics``; StreamsError names a topic that does not exist."""
        found = []
        for topic in topics:
            try:
                meta = self._consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            except KafkaException as err:
                raise StreamsError(f"Kafka at {self._settings.bootstrap_servers} did not answer: {err}") from err
            if meta is None or meta.error is not None or not meta.partitions:
                raise StreamsError(
                    f"topic {topic} does not exist", hint="run `tradecore topics ensure` (with the same prefix)"
                )
            found += [(topic, p) for p in sorted(meta.partitions)]
        return found

    def assign(self, starts: Mapping[Position, int]) -> None:
        """Read each partition named from its offset (``OFFSET_BEGINNING``/``OFFSET_END`` too), and no other."""
        self._starts = dict(starts)
        self._consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])

    def seek(self, starts: Mapping[Position, int]) -> None:
        """Read each partition named from the offset given next (the others go on where they are)."""
        for (topic, partition), offset in starts.items():
            self._starts[(topic, partition)] = offset
            self._consumer.seek(TopicPartition(topic, partition, offset))

    def batch(self, max_records: int, timeout_s: float) -> list[RawRecord]:
        """Up to ``max_records`` records: as soon as the first arrives (within ``timeout_s``), with whatever else is
        already fetched — consume() alone would wait out its timeout for a full batch."""
        try:
            first = self._consumer.poll(timeout_s)
            messages = [] if first is None else [first, *self._consumer.consume(max_records - 1, 0)]
        except KafkaException as err:
            raise StreamsError(f"reading from Kafka failed: {err}") from err
        records = raw_records(messages)
        if len(records) < len(messages):
            for msg in messages:
                error = msg.error()
                if error is not None and error.fatal():  # (others, e.g. the end of a partition, are informational)
                    raise StreamsError(f"reading {msg.topic()} failed: {error.str()}")
        return records

    def read(
        self,
        stops: Mapping[Position, int],
        *,
        max_records: int = 1000,
        wait_s: float = 0.5,
        progress: Callable[[int], None] | None = None,
        stall_s: float | None = None,
    ) -> Iterator[list[RawRecord]]:
        """Batches of the records of each partition of ``stops``, from where it was assigned up to its stop
        (exclusive); ends once every partition has been read to its stop, transaction markers and aborted records
        included (``read_committed`` steps over them without a record).

        Records of a partition come in offset order; partitions interleave as they are fetched. One batch per
        fetch, empty when nothing came within ``wait_s``. ``progress`` is told how many offsets each fetch passed;
        ``end`` cuts a partition short and ``hold``/``release`` pause one while the caller catches up.

        Raises:
            StreamsError: Kafka failed; ``ReadStalled`` (with ``stall_s``): no partition moved for that long.
        """
        self._stops = {tp: stop for tp, stop in stops.items() if stop > max(self._starts.get(tp, 0), 0)}
        self._asked = dict(self._stops)
        self._next = {tp: max(self._starts.get(tp, 0), 0) for tp in self._stops}
        self._held = set()
        return self._batches(max_records, wait_s, progress, stall_s)

    def _batches(
        self, max_records: int, wait_s: float, progress: Callable[[int], None] | None, stall_s: float | None
    ) -> Iterator[list[RawRecord]]:
        moved = time.monotonic()
        told = self._read_so_far()  # what ``progress`` has been told (``end`` between batches counts next time)
        while not all(self.finished(tp) for tp in self._stops):
            records: list[RawRecord] = []
            # A fetch hands over runs of one partition in offset order: each run is checked against its stop at
            # its last record, not record by record (a replay's per-record Python, after the decode).
            for tp, grouped in groupby(self.batch(max_records, wait_s), RUN_OF):
                run = list(grouped)
                stop = self._stops.get(tp)
                if stop is None or run[-1].offset >= stop:
                    self._pause(tp)  # past its stop (or a partition not asked for): fetch no more of it
                    run = [] if stop is None else [r for r in run if r.offset < stop]
                if run:
                    self._next[tp] = max(self._next[tp], run[-1].offset + 1)
                    records += run
            self._step_over_markers()
            advanced, told = self._read_so_far() - told, self._read_so_far()
            if advanced:
                moved = time.monotonic()
                if progress is not None:
                    progress(advanced)
            elif stall_s is not None and time.monotonic() - moved > stall_s:
                behind = {
                    f"{t}[{p}]": f"{self._next[(t, p)]}/{s}"
                    for (t, p), s in self._stops.items()
                    if not self.finished((t, p))
                }
                raise ReadStalled(f"reading made no progress for {stall_s:.0f}s; stuck at {behind}")
            yield records  # empty too: the caller may have records to release now that a partition finished
        if progress is not None and self._read_so_far() > told:
            progress(self._read_so_far() - told)  # the last partitions were cut short by ``end``

    def finished(self, position: Position) -> bool:
        """Whether ``read`` has read ``position`` up to its stop (a partition it was not asked to read is)."""
        return self._next.get(position, 0) >= self._stops.get(position, 0)

    def end(self, position: Position, offset: int) -> None:
        """``read`` stops ``position`` at ``offset`` instead (records at or past it are the caller's to drop)."""
        if offset < self._stops.get(position, 0):
            self._stops[position] = offset
            self._pause(position)

    def hold(self, position: Position) -> None:
        """Fetch no more of ``position`` until ``release`` (a caller's buffer is full)."""
        self._held.add(position)
        self._pause(position)

    def release(self, position: Position) -> None:
        if position in self._held:
            self._held.discard(position)
            if not self.finished(position):
                self._consumer.resume([TopicPartition(*position)])

    def _pause(self, position: Position) -> None:
        self._consumer.pause([TopicPartition(*position)])

    def _read_so_far(self) -> int:
        """Offsets passed so far; a partition cut short by ``end`` counts as read to the stop first asked."""
        return sum(
            self._asked[tp] if self.finished(tp) else min(self._next[tp], stop) for tp, stop in self._stops.items()
        )

    def _step_over_markers(self) -> None:
        """Offsets passed without a record (commit markers, aborted records): the consumer's position says."""
        behind = [TopicPartition(t, p) for (t, p) in self._stops if not self.finished((t, p))]
        if not behind:
            return
        for found in self._consumer.position(behind):
            tp = (found.topic, found.partition)
            if found.offset > self._next[tp]:
                self._next[tp] = found.offset
            if self.finished(tp):
                self._pause(tp)

    def bounds(self, position: Position, timeout_s: float = 30) -> tuple[int, int]:
        """The first offset ``position`` still holds and its high watermark."""
        retrying = _until_leaders_answer(timeout_s)
        try:
            # A partition whose leader is not elected yet (a topic just made) or is moving answers NOT_LEADER for a
            # moment: asked again, as ``ends`` does (a CI run's verify-processors failed on a fresh topic).
            low, high = retrying(self._consumer.get_watermark_offsets, TopicPartition(*position), timeout=timeout_s)
        except KafkaException as err:
            raise StreamsError(f"could not read where {position[0]}[{position[1]}] starts and ends: {err}") from err
        return int(low), int(high)

    def ends(self, positions: Iterable[Position] | None = None, timeout_s: float = 30) -> dict[Position, int]:
        """The high watermark (one past the last record or transaction marker) of each partition.

        One ListOffsets request for all of them through the admin client: the consumer's own look-ups queue behind
        its long-poll fetches, half a second each.
        """
        wanted = [TopicPartition(t, p) for t, p in (self._starts if positions is None else positions)]
        if not wanted:
            return {}
        # A leader moving (a broker failing over) answers with a retriable error such as UNKNOWN_LEADER_EPOCH for
        # a moment: asked again until timeout_s, so that a failover does not stop the projector or a rebuild.
        retrying = _until_leaders_answer(timeout_s)
        try:
            return retrying(self._ends_once, wanted, timeout_s)
        except KafkaException as err:
            raise LogEndUnknown(f"could not ask Kafka where the partitions end: {err}") from err

    def _ends_once(self, wanted: list[TopicPartition], timeout_s: float) -> dict[Position, int]:
        client = shared_admin(self._settings)
        try:
            with _LIST_OFFSETS:
                futures = client.list_offsets(
                    {tp: OffsetSpec.latest() for tp in wanted},
                    isolation_level=IsolationLevel.READ_UNCOMMITTED,
                    request_timeout=timeout_s,
                )
                return {(tp.topic, tp.partition): int(future.result().offset) for tp, future in futures.items()}
        except KafkaException as err:
            if _retriable(err):  # (a client whose leaders are stale is asked again only once renewed)
                renew_shared_admin(self._settings, client)
            raise

    def reached(self, stops: Mapping[Position, int]) -> bool:
        """Whether every partition named has been read up to its stop (transaction markers included)."""
        wanted = [(tp, stop) for tp, stop in stops.items() if stop > 0]
        if not wanted:
            return True
        now = self._consumer.position([TopicPartition(t, p) for (t, p), _ in wanted])
        # Nothing fetched yet leaves a position unset: it is then where reading started.
        return all(
            (found.offset if found.offset >= 0 else self._starts.get(tp, 0)) >= stop
            for found, (tp, stop) in zip(now, wanted, strict=True)
        )

    def close(self) -> None:
        self._consumer.close()


# A leader moving answers with these for a moment although librdkafka does not flag them retriable
# (FENCED_LEADER_EPOCH stopped the projector in a CI run of tests/deploy/test_broker_loss.py).
_LEADER_MOVING = frozenset(
    {
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


LEADER_RETRY_S = 0.5  # how long to wait before asking again while a leader is moving or not yet elected


def _until_leaders_answer(timeout_s: float) -> Retrying:
    """Ask again every ``LEADER_RETRY_S``, for up to ``timeout_s``, while the answer is a leader moving or not yet
    there."""
    return Retrying(
        retry=retry_if_exception(_retriable),
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(LEADER_RETRY_S),
        reraise=True,
    )


def _retriable(err: BaseException) -> bool:
    if not isinstance(err, KafkaException) or not err.args or not isinstance(err.args[0], KafkaError):
        return False
    return bool(err.args[0].retriable()) or err.args[0].code() in _LEADER_MOVING
