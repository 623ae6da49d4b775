"""Deterministic interleaving of several input partitions.

A processor with more than one input (risk: orders, executions, ticks; execution: accepted orders and ticks)
decides differently depending on which record it sees first. Records are released in event-time order, each
stamped with its event's ``occurred_at`` in microseconds by whoever adds it (the Kafka timestamp is the same time cut
to the millisecond: too coarse, ``streams.host.inputs``); ties go by topic rank, partition and offset, and each
partition is read in offset order.

The head stamped ``t`` is released once every other partition it is ordered against has a buffered record (whose
head is then at or after ``t``), or has nothing more to give: in a replay, it reached its stop offset; live, it
has been at the end of the log for a grace period. So a replay of a complete log always takes the same order, and
so does live processing whenever no input lags by more than the grace period (as in Kafka Streams'
``max.task.idle.ms``).

What is ordered against what: by default every source against every other (one total order, as a reader of one
topic's partitions needs). A host's co-partitioned inputs are split among instances by partition, so a processor's
outputs cannot depend on the order of records of different partition numbers (two instances could not agree on
one): given ``broadcast`` ranks, partition ``p`` of a partitioned input is ordered only against partition ``p`` of
the other partitioned inputs and against every broadcast partition — a record is never held for a partition whose
keys it cannot meet.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
Source = tuple[int, int]  # (topic rank, partition)


@dataclass(order=True, frozen=True)
class Stamped(Generic[T]):
    timestamp: int
    rank: int
    partition: int
    offset: int
    item: T = field(compare=False)

    @property
    def source(self) -> Source:
        return (self.rank, self.partition)


class Merger(Generic[T]):
    """Buffers records per source partition and releases them in the deterministic order.

    ``broadcast``: None orders every source against every other; a collection of topic ranks orders partitioned
    sources only within their partition number and against those ranks (see the module's docstring).
    """

    def __init__(self, sources: set[Source], broadcast: Collection[int] | None = None) -> None:
        self._buffers: dict[Source, deque[Stamped[T]]] = {s: deque() for s in sources}
        self._broadcast = None if broadcast is None else frozenset(broadcast)

    def add(self, record: Stamped[T]) -> None:
        self._buffers[record.source].append(record)

    def buffered(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def sources(self) -> list[Source]:
        return list(self._buffers)

    def held(self, source: Source) -> int:
        """How many records of ``source`` are buffered."""
        return len(self._buffers[source])

    def empty(self) -> list[Source]:
        """The sources with nothing buffered: what a held record may be waiting on."""
        return sorted(s for s, b in self._buffers.items() if not b)

    def related(self, a: Source, b: Source) -> bool:
        """Whether records of ``a`` and ``b`` are ordered against each other."""
        if self._broadcast is None or a[0] in self._broadcast or b[0] in self._broadcast:
            return True
        return a[1] == b[1]

    def release(
        self, exhausted: Callable[[Source], bool], drained: Callable[[Source], bool] | None = None
    ) -> Iterator[Stamped[T]]:
        """Every record that is safe to process now, in order.

        ``exhausted(source)``: the source has nothing more to deliver for now (replay: at its stop offset; live: at
        the end of the log for the grace period). ``drained(source)``, if given, is asked instead for a broadcast
        head: reference data is taken as soon as every source it is ordered against has nothing more fetched,
        without waiting out their grace periods (live: at the end of the log).
        """
        buffers = self._buffers
        # Heads as plain tuples of the order's fields: compared in C, not by the dataclass's generated __lt__.
        heads = [(*_key(b[0]), s) for s, b in buffers.items() if b]
        heapq.heapify(heads)
        # Nothing is added while releasing, so whether an empty source is exhausted is asked once per pass.
        asked: dict[tuple[Source, bool], bool] = {}
        # Sources whose head must wait: so must every later head ordered against them.
        held: list[Source] = []
        # What a head may wait on: the sources with nothing buffered (more empty out as the pass releases).
        empty = {s for s, b in buffers.items() if not b}

        def done(source: Source, at_once: bool) -> bool:
            if (source, at_once) not in asked:
                asked[(source, at_once)] = (drained if at_once and drained is not None else exhausted)(source)
            return asked[(source, at_once)]

        while heads:
            *_, source = heapq.heappop(heads)
            at_once = self._broadcast is not None and source[0] in self._broadcast
            if any(self.related(source, h) for h in held) or not self._safe(source, empty, at_once, done):
                held.append(source)
                continue
            buffer = buffers[source]
            yield buffer.popleft()
            if buffer:
                heapq.heappush(heads, (*_key(buffer[0]), source))
            else:
                empty.add(source)

    def _safe(self, source: Source, empty: set[Source], at_once: bool, done: Callable[[Source, bool], bool]) -> bool:
        # A buffered head is at or after this one, or it would have been popped first (or held, checked above).
        # Every related empty source is asked (no short cut): live, asking is what starts its idle clock.
        return all([done(other, at_once) for other in empty if other != source and self.related(source, other)])


def _key(record: Stamped[T]) -> tuple[int, int, int, int]:
    return record.timestamp, record.rank, record.partition, record.offset
