"""Deterministic interleaving of several input partitions.

A processor with more than one input (risk: orders, executions, ticks; execution: accepted orders and ticks)
decides differently depending on which record it sees first. Records are released in event-time order: every
record's Kafka timestamp is its event time (our producers set it from ``envelope.occurred_at``); ties go by topic
rank, partition and offset, and each partition is read in offset order.

The head stamped ``t`` is released once every other partition has a buffered record (whose head is then at or
after ``t``), or has nothing more to give: in a replay, it reached its stop offset; live, it has been at the end
of the log for a grace period. So a replay of a complete log always takes the same order, and so does live
processing whenever no input lags by more than the grace period (as in Kafka Streams' ``max.task.idle.ms``).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator
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
    """Buffers records per source partition and releases them in the deterministic total order."""

    def __init__(self, sources: set[Source]) -> None:
        self._buffers: dict[Source, deque[Stamped[T]]] = {s: deque() for s in sources}

    def add(self, record: Stamped[T]) -> None:
        self._buffers[record.source].append(record)

    def buffered(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def release(self, exhausted: Callable[[Source], bool]) -> Iterator[Stamped[T]]:
        """Every record that is safe to process now, in order.

        ``exhausted(source)``: the source has nothing more to deliver for now (replay: at its stop offset; live: at
        the end of the log for the grace period).
        """
        heads = [(b[0], s) for s, b in self._buffers.items() if b]
        heapq.heapify(heads)
        # Nothing is added while releasing, so whether an empty source is exhausted is asked once per pass.
        asked: dict[Source, bool] = {}

        def done(source: Source) -> bool:
            if source not in asked:
                asked[source] = exhausted(source)
            return asked[source]

        while heads:
            _head, source = heapq.heappop(heads)
            if not self._safe(source, done):
                return
            yield self._buffers[source].popleft()
            if self._buffers[source]:
                heapq.heappush(heads, (self._buffers[source][0], source))

    def _safe(self, source: Source, exhausted: Callable[[Source], bool]) -> bool:
        # A buffered head is at or after this one, or it would have been popped first. Every empty source is asked
        # (no short cut): live, asking is what starts its idle clock.
        return all([other == source or bool(buffer) or exhausted(other) for other, buffer in self._buffers.items()])
