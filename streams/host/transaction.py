"""The host's open batch: one Kafka transaction holding a batch's outputs, its dead letters, the input offsets it
consumed, (with several inputs) each task's journal entry — the order it took its records in, to the task's
journal partition — and, when one is due, the tasks' checkpoints (``streams.host.checkpoints``).

Commits follow ``streams.kafka.transactions``: a transaction that cannot be settled raises ``StartOver``, and the
host drops producer, consumer and state and rebuilds from the committed offsets with a new producer.

A commit need not be waited for (``commit(wait=False)``): the host takes the next batch's records while the broker
commits the last one, and holds what they derive until it has (a producer has one transaction at a time); the next
commit, or anything that needs the offsets committed, settles it first. Under a steady stream a commit's round trips
then no longer stop the host: what came meanwhile is already taken when it returns, and commits the next. Whatever
the next batch derived is dropped with the host's state if the commit before it fails (``StartOver``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from typing import Any

from streams.host.checkpoints import Record
from streams.host.tasks import Task
from streams.kafka import Consumer, KafkaError, KafkaSettings, Message
from streams.kafka.logreader import Position, RawRecord
from streams.kafka.transactions import TransactionalProducer, TransactionUnsettled
from streams.metrics import ProcessorMetrics


class StartOver(Exception):
    """What is in memory cannot be trusted to match the committed log: rebuild from the committed offsets."""


class HostTransaction:
    """Begins on the first record taken; ``commit`` writes its offsets (and journal entry) and commits it.

    Parameters:
        settings: where Kafka is.
        transactional_id: the host's slot (group and instance): a restarted instance fences its predecessor.
        name: the processor's, for the logs.
        journal: the processor's journal topic, or None when it has one input (no choice of order to remember).
        inputs_prefix: the inputs' namespace, left out of the journal's topic names.
        metrics: where commits and aborts are counted.
        broadcast: the broadcast input topics: their positions are the tasks' own (in journal and checkpoints),
            never committed in the group, which instances share.
        checkpoints: the processor's checkpoints topic, or None when it keeps none.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        name: str,
        journal: str | None,
        inputs_prefix: str,
        metrics: ProcessorMetrics,
        broadcast: Collection[str] = (),
        checkpoints: str | None = None,
    ) -> None:
        self._producer = TransactionalProducer(
            settings,
            transactional_id,
            name,
            **{
                # What an instance lost mid-batch (not restarted: a restart fences it at once) holds back: its
                # partitions, once another instance has them, and every read_committed reader of what it wrote, until
                # the broker aborts the transaction. A batch is committed within a second (``runner._LONG_PASS_S``),
                # costly frames in pieces: 20 s leaves a slow machine room, and is a third of the minute it was.
                "transaction.timeout.ms": 20000,
                "linger.ms": 2,
                # After a commit the next transaction's first request is refused (CONCURRENT_TRANSACTIONS) until the
                # broker has written the commit markers, usually within a few ms: retried after the default 100 ms,
                # that wait was the largest part of the host's p99 at 1,000 orders/s (docs/PERFORMANCE.md).
                "retry.backoff.ms": 5,
            },
        )
        self._journal = journal
        self._prefix = inputs_prefix
        self._metrics = metrics
        self._broadcast = frozenset(broadcast)
        self._checkpoint_topic = checkpoints
        self.opened = 0.0  # when the open batch began (monotonic clock)
        self.taken = 0  # input records it holds
        self.committed: dict[Position, int] = {}  # per input partition, the offset committed last
        self._open = False  # a batch has begun and its commit has not
        self._staged: dict[Position, int] = {}
        # Each task's journal entry: [topic, partition, count] runs, in the order taken.
        self._runs: dict[int, tuple[Task, list[list[Any]]]] = {}
        # The last batch's commit while the broker has not answered it, with the offsets it commits; and what the
        # open batch sent meanwhile, held for its transaction.
        self._committing: tuple[Future[object], dict[Position, int]] | None = None
        self._held: list[tuple[str, bytes | None, bytes | None, int, list[tuple[str, bytes]] | None]] = []

    @property
    def open(self) -> bool:
        return self._open

    @property
    def committing(self) -> bool:
        """The last commit has not been settled (``settle``): the broker may not have answered it yet."""
        return self._committing is not None

    def begin(self) -> None:
        """Begin a batch unless one is open (one with no record in it can still carry checkpoints); its transaction
        begins once the last commit is settled."""
        if not self._open:
            self._open = True
            self.opened, self.taken = time.monotonic(), 0
        self.settle(block=False)

    def settle(self, *, block: bool = True) -> None:
        """Settle the last commit — waiting for the broker's answer unless not ``block``, and then only if it has
        answered (or a call of it is overdue) — and begin the open batch's transaction, with what it held.

        Raises:
            StartOver: that commit could not be settled.
        """
        if self._committing is not None:
            commit, staged = self._committing
            try:
                if not self._producer.settle(commit, block=block):
                    return
            except TransactionUnsettled as unsettled:
                self._committing = None
                if unsettled.aborted:
                    self._metrics.transaction("aborted")
                raise StartOver(str(unsettled)) from unsettled
            self._committing = None
            self.committed.update(staged)
            self._metrics.transaction("committed")
        if self._open and not self._producer.open:
            self._producer.begin()
            for record in self._held:
                self._producer.send(*record)
            self._held = []

    def take(self, record: RawRecord, tasks: list[Task]) -> None:
        """Count ``record`` as consumed in this transaction by ``tasks`` (beginning it if none is open)."""
        self.begin()
        self.taken += 1
        position = (record.topic, record.partition)
        self._staged[position] = record.offset + 1
        name = record.topic[len(self._prefix) :]
        for task in tasks:
            task.taken += 1
            if self._journal is None:
                continue
            runs = self._runs.setdefault(task.key, (task, []))[1]
            if runs and runs[-1][0] == name and runs[-1][1] == record.partition:
                runs[-1][2] += 1
            else:
                runs.append([name, record.partition, 1])

    def take_run(self, records: Sequence[RawRecord], tasks: list[Task]) -> None:
        """``take`` each of ``records``, a run of one partition in offset order, at once (a host with one input keeps
        no journal, so the run's last offset is all there is to stage)."""
        assert self._journal is None, "a journal records the order of each record taken: take them one by one"
        self.begin()
        self.taken += len(records)
        last = records[-1]
        self._staged[(last.topic, last.partition)] = last.offset + 1
        for task in tasks:
            task.taken += len(records)

    def positions(self) -> dict[Position, int]:
        """Per input partition, the offset after the last record taken (committed, being committed or in this
        batch)."""
        committing = {} if self._committing is None else self._committing[1]
        return {**self.committed, **committing, **self._staged}

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        """Add a record to the open batch (held while the last commit is in flight)."""
        self.settle(block=False)
        if self._committing is None:
            self._producer.send(topic, key, value, timestamp, headers)
        else:
            self._held.append((topic, key, value, timestamp, headers))

    def commit(
        self,
        group: Consumer,
        checkpoints: Callable[[], list[tuple[int, Record]]] | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Commit the open batch with the offsets taken, as ``group``'s, and the ``checkpoints`` given
        (``(partition, record)`` pairs, asked for once every journal entry is written and its offset known); the
        last commit is settled first. ``wait``: until the broker has answered, else the next batch goes on meanwhile.

        Raises:
            StartOver: it, or the last, could not be settled.
        """
        self.settle()
        if self._journal is not None:
            for partition, (task, runs) in sorted(self._runs.items()):
                entry = json.dumps(runs, separators=(",", ":")).encode()
                self._producer.send(self._journal, None, entry, 0, partition=partition, on_delivery=_note_end(task))
        offsets = {tp: o for tp, o in self._staged.items() if tp[0] not in self._broadcast}
        if checkpoints is not None and self._checkpoint_topic is not None:
            self._producer.flush()  # the journal entries' offsets are what a checkpoint follows on from
            for partition, (key, value, headers) in checkpoints():
                self._producer.send(self._checkpoint_topic, key, value, 0, headers, partition=partition)
        self._committing = (self._producer.start_commit(offsets, group), self._staged)
        self._open, self._staged, self._runs = False, {}, {}
        if wait:
            self.settle()

    def close(self) -> None:
        self._producer.close()


def _note_end(task: Task) -> Callable[[KafkaError | None, Message], None]:
    """A delivery callback that keeps where ``task``'s journal goes on after this entry."""

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            task.journal_next = int(message.offset()) + 1

    return delivered
