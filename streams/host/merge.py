"""Deterministic interleaving of several input partitions.

A processor with more than one input (risk: orders, executions, ticks; execution: accepted orders and ticks)
decides differently depending on which record it sees first. To make a replay decide exactly as the live run
did, records are released in one total order that both can compute: by broker append time (topics use
``message.timestamp.type=LogAppendTime``, so each partition's timestamps never go backwards), then topic rank,
partition and offset.

A record stamped ``t`` is released only when no other partition can still deliver a record stamped before ``t``:
each other partition either has a buffered record at or after ``t``, or is caught up with the log and the broker
clock has moved past ``t + grace`` (a record appended later is stamped later). Replays have no such waiting:
partitions that reached their stop offset can deliver nothing more.
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

    def __init__(self, sources: set[Source], grace_ms: int) -> None:
        self._buffers: dict[Source, deque[Stamped[T]]] = {s: deque() for s in sources}
        self._grace_ms = grace_ms

    def add(self, record: Stamped[T]) -> None:
        self._buffers[record.source].append(record)

    def buffered(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def release(self, caught_up: Callable[[Source], bool], now_ms: int) -> Iterator[Stamped[T]]:
        """Every record that is safe to process now, in order.

        ``caught_up(source)``: the source has nothing more to deliver at the moment (live: at the end of the log;
        replay: at its stop offset). ``now_ms``: the broker clock as best known (wall clock live; +inf in replays).
        """
        heads = [(b[0], s) for s, b in self._buffers.items() if b]
        heapq.heapify(heads)
        while heads:
            head, source = heapq.heappop(heads)
            if not self._safe(head, source, caught_up, now_ms):
                return
            yield self._buffers[source].popleft()
            if self._buffers[source]:
                heapq.heappush(heads, (self._buffers[source][0], source))

    def _safe(self, head: Stamped[T], source: Source, caught_up: Callable[[Source], bool], now_ms: int) -> bool:
        for other, buffer in self._buffers.items():
            if other == source or buffer:
                continue  # a buffered head is >= this one, or it would have been popped first
            if not (caught_up(other) and now_ms > head.timestamp + self._grace_ms):
                return False
        return True
