"""The processors of a pipeline run in process, in the order their hosts take on a complete log — without Kafka.

Each topic is a list of records per partition (the partition from the key, by the producers' murmur2 partitioner,
``streams.replay.keys``), appended in the order its single writer produced them, so offsets are what Kafka would
give. Each processor reads its inputs as ``streams.host.merge`` releases them: by (event time in ms, topic rank,
partition, offset), partition *p* of a co-partitioned input ordered against partition *p* of the others and every
broadcast partition. A head is taken only once no related input that is empty now can still receive a record
ordered before it — what "complete log" means for a pipeline whose processors feed each other (risk → execution →
executions.by-account → risk). Derived events carry their trigger's event time (``domain.derive``), so an upstream
processor can still emit a record stamped ``t`` only while it, or a processor upstream of it, has unread input
stamped ``t`` or earlier on an input it derives events from. Which inputs those are is declared per processor (risk
derives from orders, not from the fills and positions it folds; broadcast inputs are reference data and derive
nothing) and checked: the run stops if an input derives where none was declared. Records a processor is still to
read itself are left out of the bound on its own inputs: what they cause is caused after them, as a live host
takes it.

Outputs go through the same steps as in ``streams.host.handler``: an exception dead-letters the input (recorded
with its reason here), a ``Forward`` re-keys the input unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schemas.events import Event
from streams.errors import StreamsError
from streams.host.processor import Forward, Processor, event_time_ms
from streams.replay.keys import partition_for


class HarnessError(StreamsError):
    """The in-process replay cannot go on (no processor can take its next record, or reference data derived)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a topic partition: its event, key and Kafka timestamp (the event time in ms)."""

    timestamp: int
    partition: int
    offset: int
    key: str
    event: Event


@dataclass(frozen=True, slots=True)
class DeadLetter:
    processor: str
    topic: str
    record: Record
    reason: str


class _MinQueue:
    """The unread records' timestamps of one source for one reader: their minimum in O(1) as records come and go."""

    def __init__(self) -> None:
        self._mins: deque[int] = deque()

    def push(self, timestamp: int) -> None:
        while self._mins and self._mins[-1] > timestamp:
            self._mins.pop()
        self._mins.append(timestamp)

    def pop(self, timestamp: int) -> None:
        if self._mins and self._mins[0] == timestamp:
            self._mins.popleft()

    def min(self) -> int | None:
        return self._mins[0] if self._mins else None


@dataclass
class _Reader:
    """One processor's view of its inputs: where it is in each source, and the unread minimum of each."""

    processor: Processor
    rank: dict[str, int]
    broadcast: frozenset[str]
    derives: frozenset[str] = frozenset()  # the inputs it derives events from
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    unread: dict[tuple[str, int], _MinQueue] = field(default_factory=dict)


class Pipeline:
    """Processors wired by their topics; ``append`` the origin's events (ticks), then ``run`` to the end."""

    def __init__(self, processors: Sequence[Processor], partitions: int) -> None:
        self.partitions = partitions
        self.topics: dict[str, list[list[Record]]] = {}
        self.dead_letters: list[DeadLetter] = []
        # Per processor, the records it took, in order — what the host's journal would hold: (topic, partition, offset)
        self.taken: dict[str, list[tuple[str, int, int]]] = {p.name: [] for p in processors}
        self._readers = [
            _Reader(p, {t: i for i, t in enumerate((*p.partitioned, *p.broadcast))}, frozenset(p.broadcast))
            for p in processors
        ]
        self._by_topic: dict[str, list[_Reader]] = {}
        for reader in self._readers:
            for topic in reader.rank:
                self._topic(topic)
                self._by_topic.setdefault(topic, []).append(reader)
                for p in range(partitions):
                    reader.positions[(topic, p)] = 0
                    reader.unread[(topic, p)] = _MinQueue()
        self._writers: dict[str, set[int]] = {}  # topic -> readers (by index) whose outputs have gone there
        self._outputs_of: dict[int, set[str]] = {i: set() for i in range(len(self._readers))}
        self._declared: dict[str, int] = {}

    def writes(self, processor: Processor, topics: Iterable[str], derived_from: Iterable[str] | None = None) -> None:
        """Declare that ``processor`` writes ``topics``, deriving from ``derived_from`` (default: every partitioned
        input) — needed before ``run``: who can still send what."""
        index = next(i for i, r in enumerate(self._readers) if r.processor is processor)
        reader = self._readers[index]
        reader.derives = frozenset(processor.partitioned if derived_from is None else derived_from)
        for topic in topics:
            self._declared[topic] = index
            self._outputs_of[index].add(topic)
            self._topic(topic)

    def append(self, topic: str, event: Event, key: str | None = None) -> Record:
        """Append ``event`` to ``topic`` as its producer would (keyed by its route's field unless ``key`` is given)."""
        key = event.key if key is None else key
        partition = partition_for(key, self.partitions)
        log = self._topic(topic)[partition]
        record = Record(event_time_ms(event), partition, len(log), key, event)
        log.append(record)
        for reader in self._by_topic.get(topic, ()):
            reader.unread[(topic, partition)].push(record.timestamp)
        return record

    def events(self, topic: str) -> list[Event]:
        """Every event of ``topic``, partition by partition in offset order (as a reader of the topic sees it)."""
        return [r.event for log in self._topic(topic) for r in log]

    def run(self) -> None:
        """Take every record as the hosts would, until none is left unread.

        Raises:
            HarnessError: no processor can take its next record (a cycle of waits), or reference data derived events.
        """
        while True:
            moved = False
            for index in range(len(self._readers)):
                while self._step(index):
                    moved = True
            if not moved:
                left = sum(self._head(r) is not None for r in self._readers)
                if left:
                    raise HarnessError(f"{left} processor(s) wait on each other with records left unread")
                return

    # -- one record ------------------------------------------------------------------------------------------------
    def _topic(self, topic: str) -> list[list[Record]]:
        if topic not in self.topics:
            self.topics[topic] = [[] for _ in range(self.partitions)]
        return self.topics[topic]

    def _head(self, reader: _Reader) -> tuple[tuple[int, int, int, int], str] | None:
        """The next record ``reader`` would release, as its merge key and topic."""
        best: tuple[tuple[int, int, int, int], str] | None = None
        for (topic, p), at in reader.positions.items():
            log = self.topics[topic][p]
            if at < len(log):
                key = (log[at].timestamp, reader.rank[topic], p, at)
                if best is None or key < best[0]:
                    best = (key, topic)
        return best

    def _step(self, index: int) -> bool:
        reader = self._readers[index]
        head = self._head(reader)
        if head is None or not self._safe(index, head[0], head[1]):
            return False
        (_, _, partition, offset), topic = head
        record = self.topics[topic][partition][offset]
        reader.positions[(topic, partition)] = offset + 1
        reader.unread[(topic, partition)].pop(record.timestamp)
        processor = reader.processor
        self.taken[processor.name].append((topic, partition, offset))
        try:
            outputs = processor.handle(topic, record.event)
        except Exception as err:  # as the host does: the record is dead-lettered, the pipeline goes on
            self.dead_letters.append(DeadLetter(processor.name, topic, record, f"{type(err).__name__}: {err}"))
            return True
        if outputs and topic not in reader.derives:
            raise HarnessError(f"{processor.name} derived events from {topic}, which it was not declared to")
        for output in outputs:
            if isinstance(output, Forward):
                self._check_writer(index, output.topic)
                self.append(output.topic, record.event, output.key)
            else:
                route = output.route().topic
                self._check_writer(index, route)
                self.append(route, output)
        return True

    def _check_writer(self, index: int, topic: str) -> None:
        if self._declared.get(topic) != index:
            raise HarnessError(f"{self._readers[index].processor.name} wrote {topic}, which it was not declared to")

    def _safe(self, index: int, key: tuple[int, int, int, int], topic: str) -> bool:
        """Whether no empty related source of reader ``index`` can still receive a record ordered before ``key``."""
        reader = self._readers[index]
        timestamp, rank, partition, _ = key
        broadcast_head = topic in reader.broadcast
        for (other, p), at in reader.positions.items():
            if at < len(self.topics[other][p]):
                continue  # its head is at or after ``key``, or ``key`` would not be the head
            if not (broadcast_head or other in reader.broadcast or p == partition):
                continue  # not ordered against each other (streams.host.merge)
            writer = self._declared.get(other)
            if writer is None:
                continue  # an origin (ticks): complete from the start
            earliest = self._earliest(writer, exclude=index)
            if earliest is None:
                continue
            other_rank = reader.rank[other]
            if earliest < timestamp or (earliest == timestamp and (other_rank, p) < (rank, partition)):
                return False
        return True

    def _earliest(self, writer: int, exclude: int) -> int | None:
        """The earliest event time ``writer`` can still emit: the least unread input of it and of every processor
        upstream of it (other than ``exclude``), through the inputs they derive events from."""
        seen, todo, least = {exclude}, [writer], None
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            reader = self._readers[i]
            for (topic, _), queue in reader.unread.items():
                if topic not in reader.derives:
                    continue
                low = queue.min()
                if low is not None and (least is None or low < least):
                    least = low
                upstream = self._declared.get(topic)
                if upstream is not None and upstream not in seen:
                    todo.append(upstream)
        return least
