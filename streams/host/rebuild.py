"""Rebuilding a task's state: its inputs folded from its checkpoint (or the beginning) up to the committed offsets.

Live, a processor with several inputs interleaves them by event time (``streams.host.merge``), but when an input
lags (an upstream processor catching up) live order can differ from the event-time order a replay would take. So
each transaction also writes, to the processor's journal topic, the order it took its records in — runs of
(topic, partition, count) — and a rebuild follows the journal: the state it rebuilds is the state that wrote the
committed outputs, whatever order that was. Records the journal does not cover are taken by event time.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

from streams.host.decoding import Decoded
from streams.host.inputs import Inputs
from streams.host.merge import Source
from streams.host.tasks import Task
from streams.host.transaction import StartOver
from streams.kafka import KafkaSettings
from streams.kafka.logreader import BOUNDED, LogReader, Position, RawRecord


class Rebuild:
    """Replays a task's inputs into ``fold`` (which hands each record to the task's processor).

    Parameters:
        settings: where Kafka is.
        readers: the name its readers take, with ``{}`` for what they read (``replay``, ``journal``).
        inputs: the processor's inputs.
        journal: its journal topic, or None when it has one input.
        batch_max: records per read at most.
        decode: decodes a batch of records at once (``streams.host.decoding``), as live does.
        fold: applies one decoded record to a task's state.
        stall_s: how long a read may make no progress before it raises ``ReadStalled``.
        fold_runs: for a processor with one input taking frames (``streams.host.frames``): folds a read batch's
            runs into a task's state as frames and returns the records left to fold one by one.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        readers: str,
        inputs: Inputs,
        journal: str | None,
        batch_max: int,
        decode: Callable[[Sequence[RawRecord]], list[Decoded]],
        fold: Callable[[Decoded, Task], None],
        stall_s: float,
        fold_runs: Callable[[list[RawRecord], Task], list[RawRecord]] | None = None,
    ) -> None:
        self._settings = settings
        self._readers = readers
        self._inputs = inputs
        self._journal = journal
        self._batch_max = batch_max
        self._decode = decode
        self._fold = fold
        self._stall_s = stall_s
        self._fold_runs = fold_runs

    def replay(self, task: Task, starts: Mapping[Position, int], stops: Mapping[Position, int], journal: int) -> int:
        """Fold the task's records from ``starts`` (its broadcast inputs: from its own positions) up to ``stops``:
        in the order of its journal from offset ``journal`` on, then the rest by event time; how many.

        A broadcast input is followed only as far as the journal says (it is the task's own position that was
        committed, not the group's); the partitioned ones up to their committed offsets.

        Raises:
            StartOver: the journal names records past the committed offsets (it cannot be followed).
        """
        wanted = {tp: stop for tp, stop in stops.items() if stop > starts.get(tp, 0)}
        begin = {tp: max(starts.get(tp, 0), 0) for tp in wanted}
        if self._journal is not None and task.broadcast:
            reader = LogReader(self._settings, self._readers.format("ends"))
            try:
                ends = reader.ends(list(task.broadcast))
            finally:
                reader.close()
            wanted.update({tp: end for tp, end in ends.items() if end > task.broadcast[tp]})
            begin.update({tp: task.broadcast[tp] for tp in ends})
        if not wanted:
            return 0
        reader = LogReader(self._settings, self._readers.format("replay"), **BOUNDED)
        reader.assign({tp: begin[tp] for tp in wanted})
        if self._fold_runs is not None and self._journal is None:
            try:
                return self._replay_runs(reader, task, wanted)
            finally:
                reader.close()
        batches = (
            self._decode(batch) for batch in reader.read(wanted, max_records=self._batch_max, stall_s=self._stall_s)
        )
        buffers: dict[Position, deque[Decoded]] = {tp: deque() for tp in wanted}
        count = 0
        try:
            for tp, runs in self._journaled(task, journal):
                for _ in range(runs):
                    while not buffers.get(tp):
                        if tp not in buffers or reader.finished(tp):
                            raise StartOver(f"the journal goes past the committed offset of {tp[0]}[{tp[1]}]")
                        for decoded in next(batches, []):
                            buffers[(decoded.record.topic, decoded.record.partition)].append(decoded)
                    decoded = buffers[tp].popleft()
                    if tp in task.broadcast:
                        task.broadcast[tp] = decoded.record.offset + 1
                    self._fold(decoded, task)
                    count += 1
            # The broadcast inputs end where the journal left them: what else was read of them is live's to take.
            for tp in task.broadcast:
                if tp in buffers:
                    reader.end(tp, task.broadcast[tp])
                    buffers[tp].clear()
            sources = {(self._inputs.rank[t], p) for t, p in task.positions}
            merger = self._inputs.merger(sources)
            for buffer in buffers.values():
                for decoded in buffer:
                    merger.add(self._inputs.stamped(decoded))
            while True:
                for stamped in merger.release(lambda source: reader.finished(self._position(source))):
                    self._fold(stamped.item, task)
                    count += 1
                batch = next(batches, None)
                if batch is None and merger.buffered() == 0:
                    return count
                for decoded in batch or ():
                    if (decoded.record.topic, decoded.record.partition) not in task.broadcast:
                        merger.add(self._inputs.stamped(decoded))
        finally:
            reader.close()

    def _replay_runs(self, reader: LogReader, task: Task, wanted: Mapping[Position, int]) -> int:
        """One input, no journal: each batch's runs folded as frames, the rest record by record (a partition's
        records are folded in offset order either way; there is no other input to interleave)."""
        assert self._fold_runs is not None
        count = 0
        for batch in reader.read(wanted, max_records=self._batch_max, stall_s=self._stall_s):
            rest = self._fold_runs(batch, task)
            for decoded in self._decode(rest):
                self._fold(decoded, task)
            count += len(batch)
        return count

    def _position(self, source: Source) -> Position:
        return self._inputs.topics[source[0]], source[1]

    def _journaled(self, task: Task, start: int) -> Iterator[tuple[Position, int]]:
        """The task's committed journal runs from offset ``start`` on, in the order they were processed."""
        if self._journal is None:
            return
        reader = LogReader(self._settings, self._readers.format("journal"), **BOUNDED)
        try:
            position = (self._journal, task.key)
            # Everything committed before this rebuild began lies below the high watermark (read_committed steps
            # over the markers and aborted records up to there).
            high = reader.ends([position])[position]
            reader.assign({position: start})
            for batch in reader.read({position: high}, max_records=self._batch_max, stall_s=self._stall_s):
                for record in batch:
                    for topic, partition, runs in json.loads(record.value or b"[]"):
                        key = (self._inputs.prefix + topic, partition)
                        if task.covers(key):
                            yield key, runs
        finally:
            reader.close()
