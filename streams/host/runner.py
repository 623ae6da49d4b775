"""Run a processor exactly once over Kafka.

Each batch is one Kafka transaction holding the batch's outputs, its dead letters and the input offsets it
consumed, so a crash anywhere leaves no duplicate and no gap for ``read_committed`` readers
(``streams.host.transaction``). A batch is committed as soon as a pass has taken all there was and the last commit
is answered, else after ``batch_ms`` or ``batch_max`` records: a lone record's outputs are visible at once, a steady
stream is committed in what came during each commit (the host takes it meanwhile), a backlog in large transactions,
and a pass that takes long is committed within itself, so no transaction stays open much past a second.
State is kept per input partition (``streams.host.tasks``) and checkpointed, every ``checkpoint_records`` records
or ``checkpoint_ms``, in the transaction it covers (``streams.host.checkpoints``):
on assignment a task loads its partition's latest checkpoint and replays only the tail after it
(``streams.host.rebuild``), following its journal; without a readable checkpoint it replays from the beginning.
Rebalances are incremental (cooperative-sticky, ``streams.host.fetch``): a partition that stays with this instance
keeps its task, its state and its place, and replays nothing; a revoked partition's open work is committed before
it goes (or, failing that, the host starts over and the transaction is aborted), so its new owner starts from
exactly the committed offsets, checkpoints and journal.

The parts: ``Fetcher`` (``streams.host.fetch``) fetches the live input and says when an input is at its end;
``InputDecoder`` (``streams.host.decoding``) decodes each fetched batch at once; ``RecordHandler``
(``streams.host.handler``) applies the processor to a record; ``HostTransaction`` holds the open batch; ``Rebuild``
folds the log into fresh state; ``Watchdog`` (``streams.host.watchdog``) starts over a host that takes nothing though
its inputs hold records. A transaction that cannot be settled makes the host drop producer, consumer and state,
and start over from the committed offsets with a new producer — whose ``init_transactions`` fences the old one and
settles its transaction.

Broadcast inputs are positioned per task (journal and checkpoints), never in the group: any number of instances
share the partitioned inputs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from schemas.registry import SchemaRegistry
from streams.host import checkpoints
from streams.host.cadence import Cadence
from streams.host.config import HostConfig, HostStats
from streams.host.decoding import InputDecoder
from streams.host.fetch import Fetcher
from streams.host.frames import FrameTaker
from streams.host.handler import RecordHandler
from streams.host.inputs import Inputs
from streams.host.merge import Source
from streams.host.processor import Checkpointed, Processor, UnreadableSnapshot
from streams.host.rebuild import Rebuild
from streams.host.tasks import Task, Tasks
from streams.host.transaction import HostTransaction, StartOver
from streams.host.trim import release_freed_memory
from streams.host.watchdog import Watchdog
from streams.kafka import KafkaSettings, tracing
from streams.kafka.logreader import LogEndUnknown, Position, RawRecord, ReadStalled
from streams.metrics import ProcessorMetrics

__all__ = ["HostConfig", "HostStats", "ProcessorHost"]

log = logging.getLogger("tradecore.streams")

# Waiting for input: with nothing buffered, up to _IDLE_WAIT_S (a poll returns on the first record); with records
# held by the merger, _HELD_WAIT_S, so that a grace period ending is noticed promptly.
_IDLE_WAIT_S = 0.05
_HELD_WAIT_S = 0.005
_LONG_PASS_S = 1.0  # a batch still open this long within a pass is committed there (``_Session._commit_if_done``)


class ProcessorHost:
    def __init__(
        self,
        processor: Processor,
        settings: KafkaSettings,
        registry: SchemaRegistry,
        config: HostConfig | None = None,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.config = config or HostConfig()
        self.inputs = settings.topic_prefix if self.config.input_prefix is None else self.config.input_prefix
        self.outputs = settings.topic_prefix if self.config.output_prefix is None else self.config.output_prefix
        self.group = f"{self.outputs}{processor.name}"
        self.stats = HostStats()
        self.metrics = ProcessorMetrics(processor.name, self.inputs, self.outputs)
        self.topics = Inputs(self.inputs, processor.partitioned, processor.broadcast)
        # Only several inputs leave a choice of order to remember.
        self.journal = f"{self.outputs}{processor.name}.journal" if len(self.topics.topics) > 1 else None
        self.checkpoints = (
            f"{self.outputs}{processor.name}.checkpoints" if isinstance(processor, Checkpointed) else None
        )
        self.decoder = InputDecoder(self.topics, registry)
        self.handler = RecordHandler(processor, self.topics, self.outputs, registry, self.stats, self.metrics)
        self.frames = (
            FrameTaker(self.topics, registry, self.handler, self.stats, self.metrics)
            if FrameTaker.fits(processor, self.topics)
            else None
        )
        self.rebuild = Rebuild(
            settings,
            f"{self.group}-{{}}-{self.config.instance}",
            self.topics,
            self.journal,
            self.config.batch_max,
            self.decoder.decode,
            lambda decoded, task: self.handler.handle(decoded, None, [task]),
            self.config.stall_ms / 1000,
            self._fold_runs if self.frames is not None else None,
        )
        self.tasks = Tasks(processor, self.topics)
        self.live = threading.Event()  # set once a rebuild is done and the host reads live (for tests and probes)

    def _fold_runs(self, records: list[RawRecord], task: Task) -> list[RawRecord]:
        """A rebuild's runs folded as frames while the host takes frames; the records left to fold one by one."""
        return records if self.frames is None else self.frames.fold(records, task)

    def run(self, stop: threading.Event, on_idle: Callable[[], None] | None = None) -> None:
        """Process until ``stop`` is set; commits what is in flight before returning."""
        while not stop.is_set():
            try:
                self.tasks = Tasks(self.processor, self.topics)
                _Session(self).run(stop, on_idle)
            except StartOver as why:
                self.stats.restarts += 1
                self.metrics.restarted()
                log.warning("%s: starting over from the committed offsets: %s", self.processor.name, why)


class _Session:
    """One producer and one consumer, from a rebuild on the first assignment until ``stop`` or ``StartOver``."""

    def __init__(self, host: ProcessorHost) -> None:
        self._host = host
        self._config = host.config
        self._txn = HostTransaction(
            host.settings,
            f"{host.group}-{host.config.instance}",
            host.processor.name,
            host.journal,
            host.inputs,
            host.metrics,
            broadcast=host.topics.broadcast,
            checkpoints=host.checkpoints,
        )
        self._tasks = host.tasks
        self._cadence = Cadence(host.config)
        self._moving: frozenset[int] = frozenset()  # tasks being revoked: checkpointed in the commit before
        self._gone: set[int] = set()  # tasks revoked since the last rebuild
        self._closing = False  # the consumer is being closed: no more commits (a revocation then is not a move)
        self._counting = threading.Lock()
        self._merger = host.topics.merger(set())
        self._paused: set[Source] = set()  # sources not fetched while the merger holds enough of them
        self._fetcher = Fetcher(
            host.settings,
            host.group,
            host.config,
            host.topics,
            host.metrics,
            on_assigned=self._rebuild,
            on_revoked=self._revoked,
        )
        self._watchdog = Watchdog(host.processor.name, host.group, host.config.stall_ms, self._fetcher, host.topics)
        host.handler.tracing = tracing.recording()
        self._frames = None if host.handler.tracing else host.frames  # spans are per record

    def run(self, stop: threading.Event, on_idle: Callable[[], None] | None) -> None:
        leave = False
        try:
            while not stop.is_set():
                self._host.stats.pulse = time.monotonic()
                held = not self._txn.open and self._merger.buffered() > 0
                began = time.monotonic()
                records = self._fetcher.fetch(self._wait_s())
                if held:
                    waited = time.monotonic() - began
                    self._host.stats.held_wait_s += waited
                    self._host.metrics.held_wait(waited)
                singles = records
                if self._frames is not None and records:
                    singles = self._frames.take(records, self._txn, self._tasks, self._commit_if_done)
                processed = len(records) - len(singles)  # (one input: no merge; the frames committed as due)
                for decoded in self._host.decoder.decode(singles):
                    self._merger.add(self._host.topics.stamped(decoded))
                self._host.stats.held_max = max(self._host.stats.held_max, self._merger.buffered())
                for stamped in self._merger.release(self._fetcher.exhausted, self._fetcher.caught_up):
                    self._host.handler.handle(stamped.item, self._txn, self._tasks.take(stamped.item.record))
                    processed += 1
                    self._commit_if_done()  # bounded transactions; the merger keeps the rest in order
                self._bound_buffers()
                # Commit once the pass took all there was to take and the last commit is answered — what is
                # processed becomes visible at once, and under a steady stream what came while the broker committed
                # the last batch makes the next — or when the batch has been open batch_ms while a backlog keeps the
                # consumers' queues full. Not waited for: the next pass takes what comes meanwhile. A batch with
                # nothing more to take waits for the last commit's answer, then takes what came during the wait.
                waits = self._txn.open and self._fetcher.drained and self._txn.committing
                self._txn.settle(block=waits)
                if self._txn.open and (
                    (self._fetcher.drained and not self._txn.committing and not waits)
                    or time.monotonic() - self._txn.opened > self._config.batch_ms / 1000
                ):
                    self._commit(wait=False)
                self._fetcher.observe_lag(self._txn.committed, not self._txn.open and self._merger.buffered() == 0)
                if processed:
                    self._watchdog.moved()
                else:  # (records may keep coming and all wait in the merger: that is a stall too)
                    self._watchdog.check(self._merger)
                if not records and not processed:
                    self._checkpoint_idle()
                    if on_idle is not None:
                        on_idle()
            if self._txn.open:
                self._commit()
            self._txn.settle()
        except StartOver:
            leave = True  # this member's standing in the group is in doubt: the group rebalances without it
            raise
        finally:
            self._closing = True
            self._fetcher.close(leave=leave)
            self._txn.close()

    def _commit_if_done(self) -> None:
        """Within a pass: commit the open batch once it holds ``batch_max`` records, or has been open ``_LONG_PASS_S``
        (or ``batch_ms``, if longer). A pass that takes long — a slow model's scoring, costly records fetched at once —
        is committed as it goes, its outputs visible and its transaction far within the broker's timeout; an ordinary
        pass (``batch_max`` records at most, a few hundred ms) is left whole, as between passes ``batch_ms`` counts:
        committing every ``batch_ms`` within passes too doubled risk's commits over a backlog, and its checkpoints
        with them (docs/PERFORMANCE.md, "Stop 37")."""
        if self._txn.open and (
            self._txn.taken >= self._config.batch_max
            or time.monotonic() - self._txn.opened > max(self._config.batch_ms / 1000, _LONG_PASS_S)
        ):
            self._commit(wait=False)

    def _bound_buffers(self) -> None:
        """After a pass, pause each source the merger still holds ``batch_max`` records of (they wait on another
        input), and fetch again each paused one it holds half as many of. Live, an input that fetches faster than
        another (ticks against a backlog of orders) waits in the merger while the other catches up: unpaused, a host
        taking a 1M-record backlog held 1.4 GB of them. Records taken in the pass that fetched them never count: a
        pause costs the partition's prefetched records and a fetch round trip on resuming (paused on every full
        fetch, signals took 2,000 ticks a second)."""
        limit = self._config.batch_max
        for source in self._merger.sources():
            held = self._merger.held(source)
            if source in self._paused and held <= limit // 2:
                self._fetcher.resume(source)
                self._paused.discard(source)
            elif source not in self._paused and held >= limit:
                self._fetcher.pause(source)
                self._paused.add(source)

    def _wait_s(self) -> float:
        """How long the next fetch may wait for a first record."""
        if self._txn.open:
            return 0.0  # records came in the last pass: take what else is there, or commit
        if self._merger.buffered():
            return _HELD_WAIT_S  # records wait on a grace period: look again soon
        return _IDLE_WAIT_S

    def _commit(self, moving: frozenset[int] = frozenset(), *, wait: bool = True) -> None:
        """Commit the open batch, with the checkpoints due (every task of ``moving`` is due one if it took any
        record since its last); ``wait``: until the broker has answered."""
        self._moving = moving
        self._txn.commit(self._fetcher.group, self._checkpoints if self._checkpoint_due() else None, wait=wait)
        self._host.stats.commits += 1

    def _checkpoint_idle(self) -> None:
        """An idle input still gets its tasks checkpointed once ``checkpoint_ms`` has passed, in a transaction of
        their own: otherwise the records taken since the last checkpoint stay the tail every restart replays, for as
        long as the input stays quiet (a checkpoint was only ever written in a commit that took records)."""
        host = self._host
        if self._txn.open or host.checkpoints is None:
            return
        if any(self._due(t) and (host.journal is None or t.journal_next is not None) for t in self._tasks):
            self._txn.begin()
            self._commit()

    def _checkpoint_due_for(self, keys: frozenset[int]) -> bool:
        return self._host.checkpoints is not None and any(t.taken > 0 for t in self._tasks if t.key in keys)

    def _checkpoint_due(self) -> bool:
        return self._host.checkpoints is not None and any(self._due(task) for task in self._tasks)

    def _due(self, task: Task) -> bool:
        return self._cadence.due(task, len(self._tasks.by_key), self._moving)

    def _checkpoints(self) -> list[tuple[int, checkpoints.Record]]:
        """A checkpoint of each task picked for this transaction (``streams.host.cadence``): its state as of it."""
        host, positions = self._host, self._txn.positions()
        out: list[tuple[int, checkpoints.Record]] = []
        # (a checkpoint must say where its journal goes on; it knows once an entry is delivered)
        ready = lambda task: host.journal is None or task.journal_next is not None  # noqa: E731
        for task in self._cadence.pick(list(self._tasks), self._moving, ready):
            assert isinstance(task.processor, Checkpointed)
            covered = {tp: positions[tp] for tp in task.positions if tp in positions} | task.broadcast
            point = checkpoints.Checkpoint(
                task.key,
                task.processor.snapshot(),
                {(host.topics.name(t), p): o for (t, p), o in covered.items()},
                task.journal_next,
            )
            out += [(task.key, record) for record in checkpoints.records(point)]
            task.taken, task.work_s, task.checkpointed_at = 0, 0.0, time.monotonic()
            host.stats.checkpoints["written"] = host.stats.checkpoints.get("written", 0) + 1
            host.metrics.checkpoint("written")
        return out

    def _revoked(self, partitions: list[Position]) -> None:
        """Called before ``partitions`` go to another instance (this one is still their owner in the group's
        generation): the open batch is committed with their offsets, checkpoints and journal entries, so the next
        owner starts exactly where this one stopped. A commit that fails raises ``StartOver``: the new producer's
        ``init_transactions`` aborts the batch, and the next owner starts from the previous commit."""
        if self._closing:
            return
        # Each moving task is checkpointed in that commit (beginning one if none is open), so the next owner
        # replays next to nothing.
        moving = frozenset(task.key for task in self._tasks if set(task.positions) & set(partitions))
        self._gone |= moving  # (even if given back before the next rebuild: another may have taken records since)
        if self._txn.open or self._checkpoint_due_for(moving):
            self._txn.begin()
            self._commit(moving)
        self._txn.settle()  # (a commit still in flight holds their offsets too)

    def _rebuild(self, assignment: list[Position]) -> None:
        """Give each newly assigned partition its state — its checkpoint and the tail after it — then go live."""
        host = self._host
        host.live.clear()
        began = time.monotonic()
        if self._txn.open:
            self._commit()  # partitions can be added without any revoked: what the batch took is committed first
        self._txn.settle()  # (and a commit still in flight: the committed offsets are asked for below)
        broadcast = self._fetcher.broadcast_partitions()
        # A task whose partitions stayed assigned all along keeps its state: its last batch is committed (above,
        # or when others were revoked) and nobody else commits for a partition this member holds. Only the
        # others ask the group where they stand.
        held = set(assignment)
        keep = {
            task.key
            for task in self._tasks
            if self._tasks.checkpointed and task.key not in self._gone and held.issuperset(task.positions)
        }
        self._gone = set()
        positions = self._txn.positions()
        stops = {tp: positions[tp] for tp in assignment if self._tasks.key(tp) in keep}
        stops |= self._fetcher.committed([tp for tp in assignment if tp not in stops])
        fresh = self._tasks.assign(assignment, broadcast, keep)
        host.metrics.forget_lag()
        # Partitions are independent: their checkpoints are loaded and their tails replayed side by side (the
        # readers mostly wait on Kafka, so one after another would add up their round trips).
        before = host.stats.checkpoints.get("restored", 0)
        with ThreadPoolExecutor(max(len(fresh), 1), thread_name_prefix=f"{host.processor.name}-rebuild") as pool:
            replayed = sum(pool.map(lambda task: self._bring_up(task, stops), fresh))
        restored = host.stats.checkpoints.get("restored", 0) - before
        host.stats.replayed += replayed
        host.metrics.replayed(replayed)
        live_from = {**stops, **self._tasks.broadcast_starts()}
        self._txn.committed = dict(live_from)
        sources = {(host.topics.rank[t], p) for t, p in live_from}
        self._merger = host.topics.merger(sources)
        self._paused = set()  # go_live fetches every partition afresh
        if fresh:
            release_freed_memory()  # the rebuild's readers and buffers are gone: their peak need not stay resident
        self._fetcher.go_live(live_from, broadcast)
        host.live.set()
        self._watchdog.moved()
        for task in fresh:
            host.stats.rebuilt[task.key] = host.stats.rebuilt.get(task.key, 0) + 1
        if fresh:
            host.stats.live_after_s = time.monotonic() - self._fetcher.assigned_at
        log.info(
            "%s: rebuilt state from %d records in %.1f s (%d partition(s) rebuilt, %d from checkpoints, %d kept); "
            "rebuilt %s, kept %s; live %.2f s after the last assignment, from %s",
            host.processor.name,
            replayed,
            time.monotonic() - began,
            len(fresh),
            restored,
            len(self._tasks.by_key) - len(fresh),
            sorted(task.key for task in fresh),
            sorted(set(self._tasks.by_key) - {task.key for task in fresh}),
            time.monotonic() - self._fetcher.assigned_at,
            live_from,
        )

    def _bring_up(self, task: Task, stops: dict[Position, int]) -> int:
        """Restore ``task`` from its partition's latest checkpoint, if any can be, and replay the tail after it."""
        host = self._host
        found = None
        try:
            if host.checkpoints is not None and host.config.restore_checkpoints:
                reader = f"{host.group}-checkpoints-{host.config.instance}-{task.key}"
                found = checkpoints.load(host.settings, reader, host.checkpoints, task.key, host.config.stall_ms / 1000)
            starts, journal = self._restore(task, found, stops)
            return host.rebuild.replay(task, starts, {tp: stops[tp] for tp in task.positions}, journal)
        except (ReadStalled, LogEndUnknown) as stalled:  # a broker failing over: new clients, from the commits
            raise StartOver(f"bringing up partition {task.key}: {stalled}") from stalled

    def _restore(
        self,
        task: Task,
        found: checkpoints.Checkpoint | checkpoints.Unreadable | None,
        stops: dict[Position, int],
    ) -> tuple[dict[Position, int], int]:
        """Where ``task``'s replay starts: its checkpoint's positions if it could be restored, else the beginning."""
        host = self._host
        name = host.processor.name
        full: tuple[dict[Position, int], int] = ({}, 0)
        if host.checkpoints is None:
            return full
        why = "none written"
        if isinstance(found, checkpoints.Checkpoint):
            offsets = {(host.inputs + t, p): o for (t, p), o in found.offsets.items()}
            ahead = [tp for tp in task.positions if offsets.get(tp, 0) > stops.get(tp, 0)]
            if ahead:
                found = checkpoints.Unreadable(f"it is ahead of the committed offsets of {ahead}")
            else:
                try:
                    assert isinstance(task.processor, Checkpointed)
                    task.processor.restore(found.state)
                except UnreadableSnapshot as err:
                    found = checkpoints.Unreadable(f"its state cannot be read: {err}")
                else:
                    task.broadcast.update({tp: o for tp, o in offsets.items() if tp in task.broadcast})
                    task.journal_next = found.journal
                    self._count("restored")
                    return {tp: offsets.get(tp, 0) for tp in task.positions}, found.journal or 0
        if isinstance(found, checkpoints.Unreadable):
            why = str(found)
            self._count("unreadable")
            self._tasks.reset(task)
            log.warning("%s: ignoring the checkpoint of partition %d (%s); replaying it in full", name, task.key, why)
        else:
            self._count("absent")
        return full

    def _count(self, outcome: str) -> None:
        with self._counting:  # tasks are brought up in threads
            stats = self._host.stats.checkpoints
            stats[outcome] = stats.get(outcome, 0) + 1
        self._host.metrics.checkpoint(outcome)
