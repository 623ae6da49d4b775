"""Kafka transactions under one commit policy, shared by the processor host and the live-venue adapter.

The policy
    * A commit whose outcome is unknown (a timeout) or that failed with a retriable error is retried, up to
      ``COMMIT_ATTEMPTS`` times, and never aborted: after a timeout the broker may already have committed, and an
      abort would then be refused or, worse, leave the caller believing its outputs were never written.
    * An error that requires an abort (``txn_requires_abort``) is aborted: the broker has not committed anything.
    * Either way, a transaction that could not be settled raises ``TransactionUnsettled``: the caller drops
      everything it derived since its last commit and starts over from what the log holds, with a new producer.
      The new producer's ``init_transactions`` fences the old one (the same ``transactional.id``) and settles
      whatever it left open, so no zombie writes after that point. A fenced producer is unsettled the same way.
    * A call that does not come back within ``SETTLE_S`` is given up on, its transaction unsettled the same way.
      librdkafka's ``send_offsets_to_transaction`` can ignore its timeout (confluentinc/librdkafka#5456: the
      coordinator request's timeout is never checked) and hang for good once the group coordinator's broker is gone
      (#5511): tests/deploy/test_broker_loss.py saw risk's host blocked in it for minutes after a broker was killed.
      A thread stuck in C cannot be interrupted, so a commit runs on a thread of its own and the caller waits up to
      ``SETTLE_S`` for each of its calls into librdkafka; a stuck one is left behind with its producer, which the
      next producer's ``init_transactions`` fences: whatever it does if it ever comes back, the broker refuses.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.errors import StreamsError
from streams.kafka.clients import producer
from streams.kafka.settings import KafkaSettings

log = logging.getLogger("tradecore.streams")

COMMIT_ATTEMPTS = 5
TIMEOUT_S = 60
SETTLE_S = TIMEOUT_S + 15  # a librdkafka call given TIMEOUT_S that has not come back by then is not coming back
# A transaction begun right after the last commit returned has its first request refused (CONCURRENT_TRANSACTIONS)
# until the broker has written that commit's markers, a millisecond or two later; librdkafka retries the refused
# registration of its partitions after a fixed 20 ms (rdkafka_txnmgr.c, not configurable). Back-to-back transactions
# took 7.4-8.0 ms at the median, p99 26-28 ms; begun 2 ms after the last commit, 3.0 ms, p99 9 ms (docs/PERFORMANCE.md,
# "Stop 43"). A producer that begins later than that waits for nothing.
MARKERS_S = 0.002


class TransactionUnsettled(StreamsError):
    """A transaction could not be settled: start over from the committed log with a new producer."""

    def __init__(self, message: str, *, aborted: bool) -> None:
        super().__init__(message)
        self.aborted = aborted  # the broker was told to abort it (else its outcome may be unknown)


class _Stuck(Exception):
    """A step of a call did not come back in time."""


class _Caller:
    """Runs calls one at a time on a daemon thread of its own, so that one that never returns strands that thread
    only (a daemon thread does not hold the process at exit). A call marks its steps (``step``); each must come back
    within the bound given, however many a call makes."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], object], Future[object]] | None] = queue.SimpleQueue()
        self._step = (0.0, "")  # when the call in hand began its current step, and which
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while (job := self._calls.get()) is not None:
            call, future = job
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)

    def step(self, name: str) -> None:
        """Called by the call in hand as it begins a step (a blocking call into librdkafka)."""
        self._step = (time.monotonic(), name)

    def call(self, call: Callable[[], object], step_s: float) -> None:
        """Run ``call``, raising what it raises, or ``_Stuck`` naming the step that has not come back within
        ``step_s`` (it then holds this caller's thread for as long as it blocks: queue nothing more)."""
        self.wait(self.start(call), step_s)

    def start(self, call: Callable[[], object]) -> Future[object]:
        """Queue ``call``; ``wait`` for what the returned future holds."""
        future: Future[object] = Future()
        self._step = (time.monotonic(), "the call")
        self._calls.put((call, future))
        return future

    def wait(self, future: Future[object], step_s: float, *, block: bool = True) -> bool:
        """Whether the call of ``future`` came back (raising what it raised), waiting for it unless not ``block``;
        ``_Stuck`` naming its step that has not come back within ``step_s``, either way."""
        while True:
            began, name = self._step
            if future.done() or (block and wait([future], max(began + step_s - time.monotonic(), 0.0)).done):
                future.result()  # (raises what the call raised)
                return True
            if self._step[0] == began and time.monotonic() - began >= step_s:
                raise _Stuck(name)
            if not block:
                return False

    def close(self) -> None:
        """End the thread once the call in hand, if any, returns."""
        self._calls.put(None)


class TransactionalProducer:
    """One transactional producer: ``begin``, ``send`` records, ``commit`` them (with input offsets) as one.

    Parameters:
        settings: where Kafka is.
        transactional_id: stable per writer slot: a restarted writer with the same id fences its predecessor.
        name: who writes, for the logs.
        overrides: producer settings beside the project's idempotent defaults.
    """

    def __init__(self, settings: KafkaSettings, transactional_id: str, name: str, **overrides: Any) -> None:
        self.name = name
        self.open = False  # a transaction has begun and is not yet committed
        self._producer = producer(settings, **{"transactional.id": transactional_id, **overrides})
        self._producer.init_transactions(TIMEOUT_S)  # fences an earlier writer and settles what it left open
        self._caller = _Caller(f"{name}-transactions")
        self._stuck = False  # a call was given up on: the producer is left to be fenced
        self._committed_at = 0.0  # when the last commit returned (monotonic clock; set on the commit thread)

    def begin(self) -> None:
        """Begin a transaction, no sooner than ``MARKERS_S`` after the last commit returned."""
        early = self._committed_at + MARKERS_S - time.monotonic()
        if early > 0:
            time.sleep(early)
        self._producer.begin_transaction()
        self.open = True

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int = -1,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Add a record to the open transaction (waiting for room when the local queue is full); ``on_delivery``
        is called with its offset once the broker has it (by ``flush``, at the latest by ``commit``)."""
        extra: dict[str, Any] = {} if on_delivery is None else {"on_delivery": on_delivery}
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, timestamp=timestamp, partition=partition, **extra
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def flush(self) -> None:
        """Wait until the broker has every record sent so far (their delivery callbacks called); the transaction
        stays open."""
        self._producer.flush(TIMEOUT_S)

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None, group: Consumer | None = None) -> None:
        """Commit what was sent, and ``offsets`` as ``group``'s consumed positions in the same transaction.

        Raises:
            TransactionUnsettled: under the policy of this module; the producer is of no further use.
        """
        self.settle(self.start_commit(offsets, group))

    def start_commit(
        self, offsets: Mapping[tuple[str, int], int] | None = None, group: Consumer | None = None
    ) -> Future[object]:
        """``commit``, on the commit thread: returns at once, and ``settle`` waits for the outcome. Nothing may be
        sent, and no transaction begun, until it is settled."""
        # (asked here: the group consumer is the calling thread's — from another, while that one is in a rebalance
        # callback, it does not answer)
        metadata = None if offsets is None or group is None else group.consumer_group_metadata()
        return self._caller.start(partial(self._commit, offsets, metadata))

    def settle(self, commit: Future[object], *, block: bool = True) -> bool:
        """Whether the commit ``start_commit`` began has come back, waiting for it unless not ``block``.

        Raises:
            TransactionUnsettled: under the policy of this module (a call into librdkafka that has not come back
                within ``SETTLE_S`` too, blocking or not); the producer is of no further use.
        """
        try:
            if not self._caller.wait(commit, SETTLE_S, block=block):
                return False
        except _Stuck as stuck:
            self._stuck = True
            log.error(
                "%s: %s did not come back within %d s (librdkafka#5456, #5511); leaving this producer to be fenced",
                self.name,
                stuck,
                SETTLE_S,
            )
            raise TransactionUnsettled(f"{stuck} did not come back within {SETTLE_S} s", aborted=False) from None
        self.open = False
        return True

    def _commit(self, offsets: Mapping[tuple[str, int], int] | None, metadata: object | None) -> None:
        """``commit``'s work, on the ``_Caller``'s thread (``metadata``: the group's, when there are offsets to
        commit)."""
        step = self._caller.step
        try:
            if offsets is not None and metadata is not None:
                positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
                step("send_offsets_to_transaction")
                self._producer.send_offsets_to_transaction(positions, metadata, TIMEOUT_S)
            for attempt in range(COMMIT_ATTEMPTS):
                try:
                    step("commit_transaction")
                    self._producer.commit_transaction(TIMEOUT_S)
                    self._committed_at = time.monotonic()
                    break
                except KafkaException as exc:
                    error: KafkaError = exc.args[0]
                    if not error.retriable() or attempt == COMMIT_ATTEMPTS - 1:
                        raise
                    log.warning("%s: commit not settled (%s); retrying, never aborting", self.name, error)
        except KafkaException as exc:
            error = exc.args[0]
            aborted = bool(error.txn_requires_abort())
            if aborted:
                step("abort_transaction")
                self._producer.abort_transaction(TIMEOUT_S)
            raise TransactionUnsettled(str(error), aborted=aborted) from exc

    def close(self, timeout_s: float = 10) -> None:
        """Wait up to ``timeout_s`` for queued records to be delivered (an open transaction is left to be fenced);
        a producer with a call stuck in it is left as it is."""
        self._caller.close()
        if not self._stuck:
            self._producer.flush(timeout_s)
