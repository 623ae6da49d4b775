"""Reading topics from given offsets, as plain records: the Kafka side of projections, replays and audits.

A ``LogReader`` assigns partitions itself (no consumer group: its readers keep their positions elsewhere, e.g. in
the same Postgres transaction as the rows they derive), reads ``read_committed`` in batches, and knows where each
partition ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from streams import kafka
from streams.errors import StreamsError
from streams.kafka import KafkaSettings

Position = tuple[str, int]  # (full topic name, partition)


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str  # the full name, prefix included
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None  # W3C traceparent among them, when the writer was traced


class LogReader:
    """Reads partitions from start offsets; ``seek`` moves them; ``ends`` says where each one ends now."""

    def __init__(self, settings: KafkaSettings, name: str, **overrides: object) -> None:
        self._consumer = kafka.consumer(settings, f"{name}-unused-group", **overrides)
        self._admin = kafka.admin(settings)
        self._starts: dict[Position, int] = {}

    def partitions(self, topics: Iterable[str], timeout_s: float = 30) -> list[Position]:
        """Every partition of ``topics``; StreamsError names a topic that does not exist."""
        found = []
        for topic in topics:
            meta = self._consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise StreamsError(
                    f"topic {topic} does not exist", hint="run `tradecore topics ensure` (with the same prefix)"
                )
            found += [(topic, p) for p in sorted(meta.partitions)]
        return found

    def assign(self, starts: Mapping[Position, int]) -> None:
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
        first = self._consumer.poll(timeout_s)
        records = []
        for msg in [] if first is None else [first, *self._consumer.consume(max_records - 1, 0)]:
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise StreamsError(f"reading {msg.topic()} failed: {error.str()}")
                continue  # e.g. the end of a partition: informational
            records.append(
                RawRecord(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.timestamp()[1],
                    msg.key(),
                    msg.value(),
                    msg.headers(),
                )
            )
        return records

    def ends(self, positions: Iterable[Position] | None = None, timeout_s: float = 30) -> dict[Position, int]:
        """The high watermark (one past the last record or transaction marker) of each partition.

        One ListOffsets request for all of them through the admin client: the consumer's own look-ups queue behind
        its long-poll fetches, half a second each.
        """
        wanted = [TopicPartition(t, p) for t, p in (self._starts if positions is None else positions)]
        if not wanted:
            return {}
        try:
            futures = self._admin.list_offsets(
                {tp: OffsetSpec.latest() for tp in wanted},
                isolation_level=IsolationLevel.READ_UNCOMMITTED,
                request_timeout=timeout_s,
            )
            return {(tp.topic, tp.partition): int(future.result().offset) for tp, future in futures.items()}
        except KafkaException as err:
            raise StreamsError(f"could not ask Kafka where the partitions end: {err}") from err

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
