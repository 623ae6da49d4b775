"""Read tokens (``?min_offset=topic:partition:offset``): checked against the log before any wait, and waited for a
bounded number at a time per user.

A token that can never be reached — a topic the read model does not fold, a partition the topic does not have, an
offset past the end of the log — is the client's mistake and answers 422 at once; only a reachable one is waited
for. Kafka is asked only when the cache cannot answer: partitions are only ever added and ends only grow, so a
token inside what was seen before needs no look-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api.errors import InvalidQuery, RateLimited
from projections.projectors import PROJECTORS
from projections.queries import Position
from streams.kafka.logreader import LogReader
from streams.settings import KafkaSettings

FIELD = "min_offset"


class LogBounds:
    """The partitions of the namespace's topics and where each ends, cached and refreshed from Kafka on a miss."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._prefix = settings.topic_prefix
        self._reader = LogReader(settings, "read-tokens")
        self._partitions: dict[str, int] = {}
        self._ends: dict[tuple[str, int], int] = {}

    async def check(self, projection: str, position: Position) -> None:
        """InvalidQuery (naming ``min_offset``) unless ``projection`` could ever read past ``position``."""
        topics = PROJECTORS[projection].topics
        if position.topic not in topics:
            raise InvalidQuery(
                f"the {projection} read model reads {', '.join(topics)}, not {position.topic!r}",
                field=FIELD,
                rule="min_offset.topic",
            )
        if position.partition >= self._partitions.get(position.topic, 0):
            self._partitions[position.topic] = await asyncio.to_thread(self._count, position.topic)
        if position.partition >= self._partitions[position.topic]:
            raise InvalidQuery(
                f"{position.topic} has partitions 0..{self._partitions[position.topic] - 1}, not {position.partition}",
                field=FIELD,
                rule="min_offset.partition",
            )
        where = (position.topic, position.partition)
        if position.offset >= self._ends.get(where, 0):
            self._ends[where] = await asyncio.to_thread(self._end, where)
        if position.offset >= self._ends[where]:
            raise InvalidQuery(
                f"{position.topic}:{position.partition} ends at offset {self._ends[where]}; "
                f"{position.offset} has not been written",
                field=FIELD,
                rule="min_offset.end",
            )

    def _count(self, topic: str) -> int:
        return len(self._reader.partitions([self._prefix + topic]))

    def _end(self, where: tuple[str, int]) -> int:
        topic, partition = where
        end: int = self._reader.ends([(self._prefix + topic, partition)])[(self._prefix + topic, partition)]
        return end

    def close(self) -> None:
        self._reader.close()


class WaitSlots:
    """At most ``per_user`` waits of one user at a time: a user's waits cannot pile up on the API (429 beyond)."""

    def __init__(self, per_user: int) -> None:
        self._per_user = per_user
        self._waiting: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, user: str) -> AsyncIterator[None]:
        waiting = self._waiting.get(user, 0)
        if waiting >= self._per_user:
            raise RateLimited(
                f"{user} already waits on {waiting} reads with ?min_offset= (at most {self._per_user} at once)",
                retry_after_s=1,
            )
        self._waiting[user] = waiting + 1
        try:
            yield
        finally:
            self._waiting[user] -= 1
            if not self._waiting[user]:
                del self._waiting[user]
