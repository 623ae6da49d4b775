"""Rebuilding a processor's state: its inputs folded from the beginning up to the committed offsets.

Live, a processor with several inputs interleaves them by event time (``streams.host.merge``), but when an input
lags (an upstream processor catching up) live order can differ from the event-time order a replay would take. So
each transaction also writes, to the processor's journal topic, the order it took its records in — runs of
(topic, partition, count) — and a rebuild follows the journal: the state it rebuilds is the state that wrote the
committed outputs, whatever order that was. Records the journal does not cover are taken by event time.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping

from streams.host.inputs import Inputs
from streams.host.merge import Source
from streams.host.transaction import StartOver
from streams.kafka import OFFSET_BEGINNING, KafkaSettings
from streams.kafka.logreader import LogReader, Position, RawRecord


class Rebuild:
    """Replays a processor's inputs into ``fold`` (which hands each record to the processor).

    Parameters:
        settings: where Kafka is.
        readers: the name its readers take, with ``{}`` for what they read (``replay``, ``journal``).
        inputs: the processor's inputs.
        journal: its journal topic, or None when it has one input.
        batch_max: records per read at most.
        fold: applies one record to the processor's state.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        readers: str,
        inputs: Inputs,
        journal: str | None,
        batch_max: int,
        fold: Callable[[RawRecord], None],
    ) -> None:
        self._settings = settings
        self._readers = readers
        self._inputs = inputs
        self._journal = journal
        self._batch_max = batch_max
        self._fold = fold

    def replay(self, stops: Mapping[Position, int], sources: set[Source]) -> int:
        """Fold every record below ``stops``: in the journal's order, then the rest by event time; how many.

        Raises:
            StartOver: the journal names records past the committed offsets (it cannot be followed).
        """
        wanted = {tp: stop for tp, stop in stops.items() if stop > 0}
        if not wanted:
            return 0
        reader = LogReader(self._settings, self._readers.format("replay"))
        reader.assign(dict.fromkeys(wanted, OFFSET_BEGINNING))
        batches = reader.read(wanted, max_records=self._batch_max)
        buffers: dict[Position, deque[RawRecord]] = {tp: deque() for tp in wanted}
        count = 0
        try:
            for tp, runs in self._journaled(set(wanted)):
                for _ in range(runs):
                    while not buffers[tp]:
                        if reader.finished(tp):
                            raise StartOver(f"the journal goes past the committed offset of {tp[0]}[{tp[1]}]")
                        for record in next(batches, []):
                            buffers[(record.topic, record.partition)].append(record)
                    self._fold(buffers[tp].popleft())
                    count += 1
            merger = self._inputs.merger(sources)
            for buffer in buffers.values():
                for record in buffer:
                    merger.add(self._inputs.stamped(record))
            while True:
                for stamped in merger.release(lambda source: reader.finished(self._position(source))):
                    self._fold(stamped.item)
                    count += 1
                batch = next(batches, None)
                if batch is None and merger.buffered() == 0:
                    return count
                for record in batch or ():
                    merger.add(self._inputs.stamped(record))
        finally:
            reader.close()

    def _position(self, source: Source) -> Position:
        return self._inputs.topics[source[0]], source[1]

    def _journaled(self, owned: set[Position]) -> Iterator[tuple[Position, int]]:
        """The committed journal's runs over ``owned`` partitions, in the order they were processed."""
        if self._journal is None:
            return
        reader = LogReader(self._settings, self._readers.format("journal"))
        try:
            position = (self._journal, 0)
            # Everything committed before this rebuild began lies below the high watermark (read_committed steps
            # over the markers and aborted records up to there).
            high = reader.ends([position])[position]
            reader.assign({position: OFFSET_BEGINNING})
            for batch in reader.read({position: high}, max_records=self._batch_max):
                for record in batch:
                    for topic, partition, runs in json.loads(record.value or b"[]"):
                        key = (self._inputs.prefix + topic, partition)
                        if key in owned:
                            yield key, runs
        finally:
            reader.close()
