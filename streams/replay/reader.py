"""Reading a range of a topic back, decoded, in a stated order.

A range is half-open per partition, ``[start, stop)`` in offsets. A bound given as a time is turned into an offset
per partition: the first record whose Kafka timestamp — event time here, set by our producers from
``envelope.occurred_at`` — is at or after it (millisecond resolution, Kafka's; see ``TopicReader.first_at``). With
no ``stop`` the range ends at the end the log has when the read starts (for ``read_committed``, the last stable
offset), so a replay always ends.

The reader sees committed transactions only (``read_committed``): records of aborted transactions are skipped and
commit markers take offsets but yield nothing. A record that does not decode is yielded with the reason, never
dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from schemas.contract_errors import EventDecodeError, UnknownEventError
from schemas.events import Event
from schemas.serde import EventDeserializer
from streams import kafka
from streams.host.merge import Merger, Stamped
from streams.host.runner import EVENTS_OF
from streams.kafka import Consumer, KafkaException, KafkaSettings, Message, SchemaRegistryClient, TopicPartition
from streams.replay.errors import ReplayError

TIMEOUT_S = 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAUSE_AT, _RESUME_AT = 50_000, 10_000  # records buffered per partition while the merge waits for the others


class Order(StrEnum):
    """How records of several partitions are put in one sequence."""

    TIME = "time"  # merged by event time: ties by partition, then offset; each partition stays in offset order
    PARTITION = "partition"  # as fetched: each partition in offset order, partitions interleaved as they arrive


@dataclass(frozen=True)
class Bound:
    """One end of a range: an offset (the same in every partition), or an event time."""

    offset: int | None = None
    time: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Bound:
        """``1042`` (an offset) or an ISO 8601 time with a zone, such as ``2021-01-08T10:00:00Z``."""
        if text.strip().isdigit():
            return cls(offset=int(text))
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ReplayError(
                f"{text!r} is neither an offset nor an ISO 8601 time",
                hint="give an offset such as 1042, or a time such as 2021-01-08T10:00:00Z",
            ) from None
        if at.tzinfo is None:
            raise ReplayError(f"the time {text!r} has no zone", hint="add one: Z for UTC, or +02:00")
        return cls(time=at.astimezone(UTC))

    def __str__(self) -> str:
        return str(self.offset) if self.time is None else self.time.isoformat()


def millis(at: datetime) -> int:
    """A time as a Kafka timestamp (ms since the epoch), rounded down, exactly (no float on the way)."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Record:
    """A record read back: where it is, its key, and its event — or why it has none."""

    topic: str  # without namespace
    partition: int
    offset: int
    timestamp: int  # Kafka timestamp, ms (event time)
    key: str | None
    event: Event | None
    error: str | None = None  # why the value did not decode
    value: bytes | None = None  # the raw value


class TopicReader:
    """Reads ranges of one topic of a namespace (``KafkaSettings.topic_prefix``) with one consumer.

    Parameters:
        settings: where Kafka is and the namespace.
        registry: the schema-registry client the decoder asks for writers' schemas.
        topic: the topic's name before the namespace: an event topic or ``executions.by-account``.
    """

    def __init__(self, settings: KafkaSettings, registry: SchemaRegistryClient, topic: str) -> None:
        self.topic = topic
        self.name = settings.topic_prefix + topic
        try:
            self._decoder = EventDeserializer(registry, EVENTS_OF.get(topic, topic), topic_prefix=settings.topic_prefix)
        except UnknownEventError as err:
            raise ReplayError(f"{topic} holds no events to replay: {err}") from err
        self._settings = settings
        self._consumer = kafka.consumer(settings, f"replay-{uuid.uuid4()}", **{"fetch.wait.max.ms": 50})
        self._peeker: Consumer | None = None
        try:
            metadata = self._consumer.list_topics(self.name, timeout=TIMEOUT_S).topics[self.name]
        except KafkaException as err:
            self._consumer.close()
            raise ReplayError(f"Kafka at {settings.bootstrap_servers} did not answer: {err}") from err
        if metadata.error is not None:
            self._consumer.close()
            raise ReplayError(
                f"topic {self.name} is not there: {metadata.error.str()}",
                hint="check --topic and the namespace (TRADECORE_TOPIC_PREFIX / --prefix)",
            )
        self.partitions = sorted(metadata.partitions)

    def close(self) -> None:
        self._consumer.close()
        if self._peeker is not None:
            self._peeker.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def ranges(
        self, start: Bound | None = None, stop: Bound | None = None, partitions: Sequence[int] | None = None
    ) -> dict[int, tuple[int, int]]:
        """``[start, stop)`` offsets per partition for the bounds given; ``None`` means the log's start / end now."""
        chosen = self.partitions if partitions is None else list(partitions)
        unknown = sorted(set(chosen) - set(self.partitions))
        if unknown:
            raise ReplayError(f"{self.name} has partitions 0-{len(self.partitions) - 1}, not {unknown}")
        ends = {p: self._watermarks(p) for p in chosen}
        firsts = self._resolve(start, ends, lambda low, high: low)
        lasts = self._resolve(stop, ends, lambda low, high: high)
        return {p: (firsts[p], max(firsts[p], lasts[p])) for p in chosen}

    def _watermarks(self, partition: int) -> tuple[int, int]:
        try:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(self.name, partition), timeout=TIMEOUT_S)
        except KafkaException as err:
            raise ReplayError(f"could not read where {self.name}[{partition}] starts and ends: {err}") from err
        return int(low), int(high)

    def _resolve(
        self, bound: Bound | None, ends: dict[int, tuple[int, int]], default: Callable[[int, int], int]
    ) -> dict[int, int]:
        if bound is None:
            return {p: default(*ends[p]) for p in ends}
        if bound.time is None:
            assert bound.offset is not None
            return {p: min(max(bound.offset, low), high) for p, (low, high) in ends.items()}
        return {p: self.first_at(p, low, high, millis(bound.time)) for p, (low, high) in ends.items()}

    def first_at(self, partition: int, low: int, high: int, timestamp: int) -> int:
        """The offset of the first record of ``[low, high)`` stamped at or after ``timestamp`` (ms); ``high`` if none.

        A binary search over the records' own timestamps, which assumes event time does not go back within a
        partition (true of what the processors write, which they order by event time). Kafka's ``offsets_for_times``
        cannot be used: transaction markers carry the wall-clock time of the commit, so on a transactional topic it
        answers the first marker's offset for any time in the past.
        """
        if low >= high:
            return low
        last = self._peek(partition, high - 1, high)
        if last is not None and last[1] < timestamp:
            return high  # the whole partition is before it: the usual case of a recent time, in one look
        while low < high:
            middle = (low + high) // 2
            found = self._peek(partition, middle, high)
            if found is None or found[1] >= timestamp:
                high = middle
            else:
                low = found[0] + 1
        return low

    def end_of_records(self, partition: int, low: int, high: int) -> int:
        """One past the last record of ``[low, high)``: ``high`` less the transaction markers and aborted records at
        the end (a consumer that has read every record has committed this, not ``high``)."""
        step = 1
        while True:
            start = max(low, high - step)
            last, offset = None, start
            while (found := self._peek(partition, offset, high)) is not None:
                last, offset = found[0], found[0] + 1
            if last is not None:
                return last + 1
            if start == low:
                return low
            step *= 4

    def _peek(self, partition: int, offset: int, high: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after ``offset`` and before ``high``; None if none."""
        if offset >= high:
            return None
        if self._peeker is None:
            # A consumer of its own that fetches little: each look costs one small fetch.
            self._peeker = kafka.consumer(
                self._settings,
                f"replay-{uuid.uuid4()}",
                **{"max.partition.fetch.bytes": 16_384, "queued.max.messages.kbytes": 64, "fetch.wait.max.ms": 10},
            )
        tp = TopicPartition(self.name, partition, offset)
        self._peeker.assign([tp])
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                msg = self._peeker.poll(0.1)
                if msg is not None and msg.error() is None and msg.offset() >= offset:
                    return (msg.offset(), msg.timestamp()[1]) if msg.offset() < high else None
                [position] = self._peeker.position([TopicPartition(self.name, partition)])
                if position.offset >= high:
                    return None  # only markers or aborted records left before the end
        finally:
            self._peeker.unassign()
        raise ReplayError(f"{self.name}[{partition}] gave no record at or after offset {offset} in {TIMEOUT_S}s")

    def read(
        self,
        ranges: dict[int, tuple[int, int]],
        order: Order = Order.TIME,
        progress: Callable[[int], None] | None = None,
        until: int | None = None,
        key: str | None = None,
    ) -> Iterator[Record]:
        """Every record in ``ranges``, decoded, in ``order``; ``progress(offsets)`` after each fetch.

        ``key``: only the records with this key, the others skipped without being decoded.

        ``until`` (ms): a partition also ends at its first record stamped at or after it — a time bound without a
        search, for reads that start at the beginning anyway.

        Raises:
            RegistryUnavailableError: the registry could not be asked for a writer's schema; retry.
            ReplayError: a partition made no progress for a long time (Kafka unavailable).
        """
        wanted = {p: r for p, r in ranges.items() if r[1] > r[0]}
        if not wanted:
            return
        self._consumer.assign([TopicPartition(self.name, p, start) for p, (start, _) in wanted.items()])
        try:
            yield from self._read(wanted, order, progress, until, None if key is None else key.encode())
        finally:
            self._consumer.unassign()

    def _read(
        self,
        wanted: dict[int, tuple[int, int]],
        order: Order,
        progress: Callable[[int], None] | None,
        until: int | None,
        key: bytes | None,
    ) -> Iterator[Record]:
        done = {p: start for p, (start, _) in wanted.items()}  # next offset to read, per partition
        merger: Merger[Message] = Merger({(0, p) for p in wanted})
        buffered = dict.fromkeys(wanted, 0)
        paused: set[int] = set()
        stalled_since = time.monotonic()
        while any(done[p] < stop for p, (_, stop) in wanted.items()) or merger.buffered():
            try:
                # A short wait: consume() waits it out whenever fewer records than asked for are left.
                messages = self._consumer.consume(1000, 0.02)
            except KafkaException as err:
                raise ReplayError(f"reading {self.name} failed: {err}") from err
            advanced = 0
            for msg in messages:
                if msg.error() is not None:
                    raise ReplayError(f"reading {self.name}[{msg.partition()}] failed: {msg.error().str()}")
                p, offset = msg.partition(), msg.offset()
                if until is not None and offset < wanted[p][1] and msg.timestamp()[1] >= until:
                    advanced += wanted[p][1] - done[p]  # the rest of the range is past the bound: done
                    done[p], wanted[p] = offset, (wanted[p][0], offset)
                if offset >= wanted[p][1]:
                    self._pause(p, paused)
                    continue
                advanced += offset + 1 - done[p]
                done[p] = offset + 1
                if key is not None and msg.key() != key:
                    continue
                if order is Order.PARTITION:
                    yield self._record(msg)
                    continue
                merger.add(Stamped(msg.timestamp()[1], 0, p, offset, msg))
                buffered[p] += 1
                if buffered[p] >= _PAUSE_AT:
                    self._pause(p, paused)
            advanced += self._step_over_markers(wanted, done, paused)
            if progress is not None and advanced:
                progress(advanced)
            if advanced:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 2 * TIMEOUT_S:
                behind = {p: f"{done[p]}/{stop}" for p, (_, stop) in wanted.items() if done[p] < stop}
                raise ReplayError(f"{self.name} made no progress for {2 * TIMEOUT_S}s; stuck at {behind}")
            for stamped in merger.release(lambda source: done[source[1]] >= wanted[source[1]][1]):
                p = stamped.partition
                buffered[p] -= 1
                if p in paused and buffered[p] <= _RESUME_AT and done[p] < wanted[p][1]:
                    self._consumer.resume([TopicPartition(self.name, p)])
                    paused.discard(p)
                yield self._record(stamped.item)

    def _step_over_markers(self, wanted: dict[int, tuple[int, int]], done: dict[int, int], paused: set[int]) -> int:
        """Offsets passed without a record (commit markers, aborted records): the consumer's position says."""
        behind = [TopicPartition(self.name, p) for p, (_, stop) in wanted.items() if done[p] < stop]
        if not behind:
            return 0
        advanced = 0
        for tp in self._consumer.position(behind):
            stop = wanted[tp.partition][1]
            if tp.offset > done[tp.partition]:
                reached = min(tp.offset, stop)
                advanced += reached - done[tp.partition]
                done[tp.partition] = reached
            if done[tp.partition] >= stop:
                self._pause(tp.partition, paused)
        return advanced

    def _pause(self, partition: int, paused: set[int]) -> None:
        if partition not in paused:
            self._consumer.pause([TopicPartition(self.name, partition)])
            paused.add(partition)

    def _record(self, msg: Message) -> Record:
        key = msg.key()
        text = None if key is None else key.decode(errors="replace")
        common = (self.topic, msg.partition(), msg.offset(), msg.timestamp()[1], text)
        try:
            return Record(*common, self._decoder.deserialize(msg.value()), None, msg.value())
        except EventDecodeError as err:
            return Record(*common, None, str(err), msg.value())
