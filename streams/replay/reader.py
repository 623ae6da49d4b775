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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import polars as pl

from schemas.batch.registry import writers
from schemas.contract_errors import EventDecodeError, UnknownEventError
from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer
from streams import kafka
from streams.errors import StreamsError
from streams.host.decoding import EVENTS_OF
from streams.host.merge import Merger, Stamped
from streams.kafka import Consumer, KafkaSettings, TopicPartition
from streams.kafka.logreader import LogReader, RawRecord
from streams.replay.errors import ReplayError
from streams.replay.frames import FrameDecoder, TimeMerge

TIMEOUT_S = 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAUSE_AT, _RESUME_AT = 50_000, 10_000  # records buffered per partition while the merge waits for the others
CHUNK = 10_000  # records decoded at once by ``frames``, when they come that fast


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

    def __init__(self, settings: KafkaSettings, registry: SchemaRegistry, topic: str) -> None:
        self.topic = topic
        self.name = settings.topic_prefix + topic
        try:
            self._decoder = EventDeserializer(registry, EVENTS_OF.get(topic, topic), topic_prefix=settings.topic_prefix)
        except UnknownEventError as err:
            raise ReplayError(f"{topic} holds no events to replay: {err}") from err
        self._settings = settings
        self._registry = registry
        self._reader = LogReader(settings, f"replay-{uuid.uuid4()}", **{"fetch.wait.max.ms": 50})
        self._peeker: Consumer | None = None
        try:
            self.partitions = [p for _, p in self._reader.partitions([self.name], timeout_s=TIMEOUT_S)]
        except StreamsError as err:
            self._reader.close()
            raise ReplayError(
                str(err), hint="check --topic and the namespace (TRADECORE_TOPIC_PREFIX / --prefix)"
            ) from err

    def close(self) -> None:
        self._reader.close()
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
            return self._reader.bounds((self.name, partition), timeout_s=TIMEOUT_S)
        except StreamsError as err:
            raise ReplayError(str(err)) from err

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
        with self._assigned(wanted):
            yield from self._read(wanted, order, progress, until, None if key is None else key.encode())

    def _read(
        self,
        wanted: dict[int, tuple[int, int]],
        order: Order,
        progress: Callable[[int], None] | None,
        until: int | None,
        key: bytes | None,
    ) -> Iterator[Record]:
        stops = {(self.name, p): stop for p, (_, stop) in wanted.items()}
        merger: Merger[RawRecord] = Merger({(0, p) for p in wanted})
        buffered = dict.fromkeys(wanted, 0)
        for batch in self._reader.read(stops, wait_s=0.02, progress=progress, stall_s=2 * TIMEOUT_S):
            for raw in batch:
                p, offset = raw.partition, raw.offset
                if offset >= stops[(self.name, p)]:
                    continue  # the partition ended earlier in this batch (``until``)
                if until is not None and raw.timestamp_ms >= until:
                    stops[(self.name, p)] = offset  # the rest of the range is past the bound: done
                    self._reader.end((self.name, p), offset)
                    continue
                if key is not None and raw.key != key:
                    continue
                if order is Order.PARTITION:
                    yield self._record(raw)
                    continue
                merger.add(Stamped(raw.timestamp_ms, 0, p, offset, raw))
                buffered[p] += 1
                if buffered[p] >= _PAUSE_AT:
                    self._reader.hold((self.name, p))
            for stamped in merger.release(lambda source: self._reader.finished((self.name, source[1]))):
                p = stamped.partition
                buffered[p] -= 1
                if buffered[p] <= _RESUME_AT:
                    self._reader.release((self.name, p))
                yield self._record(stamped.item)

    def frames(
        self,
        ranges: dict[int, tuple[int, int]],
        order: Order = Order.TIME,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[pl.DataFrame]:
        """Every record in ``ranges`` as frames of replay rows (``streams.replay.frames``), in ``order``: each
        fetched batch decoded at once. Raises what ``read`` raises."""
        wanted = {p: r for p, r in ranges.items() if r[1] > r[0]}
        if not wanted:
            return
        decoder = FrameDecoder(self.topic, writers(self._registry))
        stops = {(self.name, p): stop for p, (_, stop) in wanted.items()}
        merge = TimeMerge(wanted)
        with self._assigned(wanted):
            fetched: list[RawRecord] = []
            for batch in self._reader.read(
                stops, max_records=CHUNK, wait_s=0.02, progress=progress, stall_s=2 * TIMEOUT_S
            ):
                fetched += batch
                if len(fetched) < CHUNK and batch:
                    continue  # a decode costs about as much for a hundred records as for thousands: gather more
                if fetched:
                    frame, fetched = decoder.frame(fetched), []
                    if order is Order.PARTITION:
                        yield frame
                        continue
                    merge.add(frame)
                # No pause per partition here (``read`` holds one 50,000 records ahead): held rows are columns.
                released = merge.release({p: self._reader.finished((self.name, p)) for p in wanted})
                if released is not None:
                    yield released
            if fetched:
                frame = decoder.frame(fetched)
                if order is Order.PARTITION:
                    yield frame
                else:
                    merge.add(frame)
            rest = merge.release(dict.fromkeys(wanted, True))
            if rest is not None:
                yield rest

    @contextmanager
    def _assigned(self, wanted: dict[int, tuple[int, int]]) -> Iterator[None]:
        """The partitions of ``wanted`` assigned from their starts while the body reads; a Kafka failure as a
        ReplayError naming the topic."""
        self._reader.assign({(self.name, p): start for p, (start, _) in wanted.items()})
        try:
            yield
        except ReplayError:
            raise
        except StreamsError as err:
            raise ReplayError(f"reading {self.name} failed: {err}") from err
        finally:
            self._reader.assign({})

    def _record(self, raw: RawRecord) -> Record:
        text = None if raw.key is None else raw.key.decode(errors="replace")
        common = (self.topic, raw.partition, raw.offset, raw.timestamp_ms, text)
        try:
            return Record(*common, self._decoder.deserialize(raw.value), None, raw.value)
        except EventDecodeError as err:
            return Record(*common, None, str(err), raw.value)
