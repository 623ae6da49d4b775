"""A processor's input topics in one namespace, ranked, and the order their records are taken in."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from streams.host.merge import Merger, Source, Stamped

if TYPE_CHECKING:  # the decoder knows the inputs: this module needs its records' type only for annotations
    from streams.host.decoding import Decoded


class Inputs:
    """The partitioned inputs, then the broadcast ones, by full name; a topic's rank breaks event-time ties."""

    def __init__(self, prefix: str, partitioned: Sequence[str], broadcast: Sequence[str]) -> None:
        self.prefix = prefix
        self.partitioned = [prefix + t for t in partitioned]
        self.broadcast = [prefix + t for t in broadcast]
        self.topics = self.partitioned + self.broadcast  # by rank
        self.rank = {topic: i for i, topic in enumerate(self.topics)}
        self._broadcast_ranks = frozenset(range(len(self.partitioned), len(self.topics)))

    def name(self, topic: str) -> str:
        """A topic's name without the namespace, as the processor knows it."""
        return topic[len(self.prefix) :]

    def is_broadcast(self, rank: int) -> bool:
        return rank in self._broadcast_ranks

    def merger(self, sources: Collection[Source]) -> Merger[Decoded]:
        """Interleaves records of ``sources`` by event time (``streams.host.merge``)."""
        return Merger(set(sources), broadcast=self._broadcast_ranks)

    def stamped(self, decoded: Decoded) -> Stamped[Decoded]:
        record = decoded.record
        return Stamped(record.timestamp_ms, self.rank[record.topic], record.partition, record.offset, decoded)
