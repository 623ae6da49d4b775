"""Group commit: concurrent callers' items run together as batches, so a batch's fixed cost (a round trip, a
commit, an fsync) is shared by every item in it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Runs ``run_batch`` over items submitted concurrently: at most ``in_flight`` batches at once, each taking
    everything that queued while the others ran (up to ``max_batch``). Under light load a batch is one item and runs
    at once; under heavy load batches grow and the per-batch cost is shared.

    ``run_batch`` returns one outcome per item, in order: a value, or an exception raised to that item's caller.
    ``observe``, if given, hears each batch's size and how long it ran (seconds), whatever its outcome.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]],
        *,
        in_flight: int = 4,
        max_batch: int = 500,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self._run_batch = run_batch
        self._observe = observe
        self._in_flight = in_flight
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self._queue and len(self._running) < self._in_flight:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        started = time.perf_counter()
        try:
            outcomes = await self._run_batch([item for item, _ in batch])
        except BaseException as err:  # the whole batch failed (the store is down, ...): every caller hears why
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        finally:
            if self._observe is not None:
                self._observe(len(batch), time.perf_counter() - started)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away (client disconnected)
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
