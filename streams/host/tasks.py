"""Tasks: a processor's state cut by input partition, the unit that moves between instances and is checkpointed.

A ``Checkpointed`` processor runs one task per co-partitioned input partition ``p`` (as Kafka Streams runs one task
per partition group): the task takes the records of partition ``p`` of every partitioned input and every record of
the broadcast inputs, keeps its own position in each broadcast partition, and writes its own journal partition
``p``. Its state is then a function of those records alone, so it can be checkpointed, moved to another instance
and rebuilt there from its checkpoint and the tail after it — whatever the other partitions and instances do.

A processor that is not ``Checkpointed`` is one task (key 0) over every partition this instance holds, rebuilt
from the beginning of its inputs on every assignment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from streams.host.inputs import Inputs
from streams.host.processor import Checkpointed, Processor
from streams.kafka.logreader import Position, RawRecord


@dataclass
class Task:
    key: int  # the input partition (a checkpointed processor), else 0: its journal and checkpoint partition
    processor: Processor
    positions: list[Position]  # the partitioned inputs' partitions it takes
    broadcast: dict[Position, int] = field(default_factory=dict)  # the next offset it takes, per broadcast partition
    taken: int = 0  # records taken since its last checkpoint
    work_s: float = 0.0  # the time its processor took over the records since its last checkpoint: what a restart redoes
    checkpointed_at: float = field(default_factory=time.monotonic)  # its last checkpoint, or its start
    journal_next: int | None = None  # the offset after its last journal entry, once known
    frame_row_s: float | None = None  # its processor's time per row over the last frame it took (None: none yet)

    def covers(self, position: Position) -> bool:
        return position in self.broadcast or position in self.positions


class Tasks:
    """The tasks of one instance, and which of them takes each record."""

    def __init__(self, processor: Processor, inputs: Inputs) -> None:
        self.processor = processor
        self.inputs = inputs
        self.checkpointed = isinstance(processor, Checkpointed)
        self.by_key: dict[int, Task] = {}
        self._by_position: dict[Position, Task] = {}

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self.by_key.values()))

    def assign(self, assignment: list[Position], broadcast: list[Position], keep: Iterable[int] = ()) -> list[Task]:
        """Tasks for ``assignment``; those of ``keep`` stay as they are, the others start empty: which are new."""
        kept = {key: self.by_key[key] for key in keep if key in self.by_key}
        groups: dict[int, list[Position]] = {}
        for position in assignment:
            groups.setdefault(self.key(position), []).append(position)
        fresh = []
        self.by_key = {}
        for key, positions in sorted(groups.items()):
            task = kept.get(key)
            if task is None:
                task = Task(key, self._fresh(), positions, dict.fromkeys(broadcast, 0))
                fresh.append(task)
            self.by_key[key] = task
        self._by_position = {position: task for task in self.by_key.values() for position in task.positions}
        return fresh

    def key(self, position: Position) -> int:
        """The task that takes a partitioned input's ``position``."""
        return position[1] if self.checkpointed else 0

    def reset(self, task: Task) -> None:
        """Drop what ``task`` holds (a checkpoint that could not be restored): it starts from nothing."""
        task.processor = self._fresh()
        task.broadcast = dict.fromkeys(task.broadcast, 0)
        task.journal_next = None

    def _fresh(self) -> Processor:
        if isinstance(self.processor, Checkpointed):
            return self.processor.spawn()
        self.processor.reset()
        return self.processor

    def take(self, record: RawRecord) -> list[Task]:
        """The tasks ``record`` goes to (advancing their positions in a broadcast input)."""
        position = (record.topic, record.partition)
        task = self._by_position.get(position)
        if task is not None:
            return [task]
        takers = [t for t in self.by_key.values() if t.broadcast.get(position, record.offset + 1) <= record.offset]
        for t in takers:
            t.broadcast[position] = record.offset + 1
        return takers

    def broadcast_starts(self) -> dict[Position, int]:
        """Where this instance reads each broadcast partition from: the least position of its tasks."""
        starts: dict[Position, int] = {}
        for task in self.by_key.values():
            for position, offset in task.broadcast.items():
                starts[position] = min(offset, starts.get(position, offset))
        return starts
