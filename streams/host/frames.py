"""A fetched run of one input partition's records taken at once, as columns, through a ``Columnar`` processor.

A processor with one partitioned input and no broadcast input merges nothing: each partition's records are taken
in offset order, on their own. When it is ``Columnar`` and its input carries one event type, a run of at least
``SMALL`` records of a partition in one fetch goes to ``handle_frame`` as one frame instead of record by record:
the values decoded at once (``schemas.batch``), no event made but for the rows a rule asks for, the offsets taken in
one step, and only what the run derives written one by one. What is written equals the per-record path's
(``streams.host.handler``): a value that does not decode, or whose event does not build, is dead-lettered with the
same reason while the rest go on; an exception the processor meets for one row dead-letters that record.

Smaller runs — a trickle, where the frame's fixed cost outweighs the records' — go record by record, as do all
records while spans are recorded (each record gets its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import polars as pl

from schemas.batch import INDEX, BatchDecoder
from schemas.batch.objects import EventBuilder
from schemas.batch.registry import writers
from schemas.events import Event, events_on
from schemas.registry import SchemaRegistry
from streams.host.config import HostStats
from streams.host.decoding import EVENTS_OF, SMALL
from streams.host.handler import RecordHandler
from streams.host.inputs import Inputs
from streams.host.processor import Columnar, Output, Processor
from streams.host.tasks import Task, Tasks
from streams.host.transaction import HostTransaction
from streams.kafka.logreader import RawRecord
from streams.metrics import ProcessorMetrics

Outcome = tuple[Sequence[Output], str, str]  # outputs, and the reason and kind of a dead letter
PIECE_S = 0.25  # the processor's time a live frame is cut to, when its rows are costly enough to need cutting
FIRST_PIECE = 10  # a task's first live frame, in rows: enough to learn what a row costs


class RunDecoder:
    """A run of records of ``inputs``' one topic decoded at once into the frame ``handle_frame`` takes."""

    def __init__(self, inputs: Inputs, registry: SchemaRegistry) -> None:
        (self._topic,) = inputs.topics
        name = inputs.name(self._topic)
        (event,) = events_on(EVENTS_OF.get(name, name))
        self._event = event.__name__
        self._decoder = BatchDecoder(writers(registry), (event,))
        self._builder = EventBuilder(event)

    def decode(self, run: Sequence[RawRecord]) -> tuple[pl.DataFrame, list[int], dict[int, str]]:
        """The rows whose events build (column ``index`` dropped), each row's place in ``run``, and why each other
        place's value is no event (a value that does not decode, an event its class refuses).

        Raises:
            RegistryUnavailableError: the registry could not be asked for a writer's schema; retry.
        """
        batch = self._decoder.decode([record.value for record in run])
        bad = {item.index: f"{self._topic}: {item.reason}" for item in batch.malformed}
        frame = batch.frames.get(self._event)
        if frame is None:
            return pl.DataFrame(), [], bad
        refused = self._builder.refused(frame)
        if refused:
            places = frame.get_column(INDEX).to_list()
            bad.update({places[row]: f"{self._topic}: {reason}" for row, reason in refused.items()})
            frame = frame.filter(~pl.int_range(pl.len()).is_in(list(refused)))
        return frame.drop(INDEX), frame.get_column(INDEX).to_list(), bad

    def events(self, good: pl.DataFrame) -> Callable[[list[int]], Sequence[Event]]:
        """``handle_frame``'s ``events``: rows of ``good`` as events (refused rows are gone from it: all build)."""
        return lambda rows: cast(list[Event], self._builder.events(good[rows]))


class FrameTaker:
    """Takes runs of ``inputs``' one topic as frames, writing through ``handler``."""

    def __init__(
        self,
        inputs: Inputs,
        registry: SchemaRegistry,
        handler: RecordHandler,
        stats: HostStats,
        metrics: ProcessorMetrics,
        small: int = SMALL,
    ) -> None:
        (self._topic,) = inputs.topics
        self._name = inputs.name(self._topic)
        self.decoder = RunDecoder(inputs, registry)
        self._handler = handler
        self._stats = stats
        self._metrics = metrics
        self._small = small

    @staticmethod
    def fits(processor: Processor, inputs: Inputs) -> bool:
        """Whether ``processor`` over ``inputs`` can take frames: columnar, one input topic of one event type."""
        if not isinstance(processor, Columnar) or len(inputs.topics) != 1 or inputs.broadcast:
            return False
        name = inputs.name(inputs.topics[0])
        return len(events_on(EVENTS_OF.get(name, name))) == 1

    def take(
        self, records: list[RawRecord], txn: HostTransaction, tasks: Tasks, between: Callable[[], None]
    ) -> list[RawRecord]:
        """Take each partition's run of at least ``small`` of ``records`` as frames, calling ``between`` after each
        (the host commits there when its batch is due); the others are left to take one by one (returned).

        A run is one frame unless its rows are costly: then pieces of ``PIECE_S`` of the processor's time each, as
        the last frame's time per row foretells (a task's first is ``FIRST_PIECE`` rows, to learn it), so that a
        slow model's scoring of two thousand bars (≈ 12 s) does not hold one transaction open throughout. Taking a
        run in pieces derives what taking it whole does (a frame derives what its records do one by one: ``Columnar``).

        Raises:
            RegistryUnavailableError: the registry could not be asked for a writer's schema; retry.
        """
        rest: list[RawRecord] = []
        for run, task in self._runs(records, tasks.take):
            if task is None:
                rest += run
                continue
            start = 0
            while start < len(run):
                row_s = task.frame_row_s
                size = FIRST_PIECE if row_s is None else max(1, int(PIECE_S / max(row_s, 1e-9)))
                self._take_run(run[start : start + size], txn, task)
                start += size
                between()
        return rest

    def fold(self, records: list[RawRecord], task: Task) -> list[RawRecord]:
        """A rebuild's ``take``: each run of at least ``small`` of ``records`` folded into ``task``'s state as a
        frame, nothing written; the others are left to fold one by one (returned)."""
        rest: list[RawRecord] = []
        for run, taker in self._runs(records, lambda _: [task]):
            if taker is None:
                rest += run
            else:
                self._outcomes(run, taker, live=False)
                self._stats.framed += len(run)
        return rest

    def _runs(
        self, records: list[RawRecord], takers: Callable[[RawRecord], list[Task]]
    ) -> Iterator[tuple[list[RawRecord], Task | None]]:
        """``records`` by partition, each run with the task to take it as a frame (None: take it one by one)."""
        runs: dict[int, list[RawRecord]] = {}
        for record in records:
            runs.setdefault(record.partition, []).append(record)
        for run in runs.values():
            if len(run) < self._small:
                yield run, None
                continue
            found = takers(run[0])  # (one task takes a partition of the one input; asking changes nothing)
            yield run, found[0] if len(found) == 1 else None

    def _take_run(self, run: list[RawRecord], txn: HostTransaction, task: Task) -> None:
        outcomes = self._outcomes(run, task, live=True)
        txn.take_run(run, [task])
        self._stats.consumed += len(run)
        self._stats.framed += len(run)
        self._metrics.consumed_run(self._topic, [record.timestamp_ms for record in run])
        for place in sorted(outcomes):
            outputs, reason, kind = outcomes[place]
            self._handler.write(txn, run[place], outputs, reason, kind)

    def _outcomes(self, run: list[RawRecord], task: Task, live: bool) -> dict[int, Outcome]:
        """What each record of ``run`` that derives anything derives, by its place in the run."""
        good, place_of, bad = self.decoder.decode(run)
        outcomes: dict[int, Outcome] = {place: ((), f"undecodable: {why}", "undecodable") for place, why in bad.items()}
        if good.height == 0:
            return outcomes
        processor = task.processor
        assert isinstance(processor, Columnar)
        began = time.perf_counter()
        found = processor.handle_frame(self._name, good, self.decoder.events(good))
        spent = time.perf_counter() - began
        task.work_s += spent  # (a replay of these records would redo it)
        task.frame_row_s = spent / good.height
        for row, derived in found:
            place = place_of[row]
            if isinstance(derived, Exception):
                kind = type(derived).__name__
                reason = f"{kind}: {derived}"
                self._handler.failed(run[place], reason)
                outcomes[place] = ((), reason, kind)
            else:
                self._handler.observe(derived, live)
                outcomes[place] = (derived, "", "")
        return outcomes
