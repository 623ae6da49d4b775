"""Group commit: what concurrent callers see when their items run together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from commands.group_commit import GroupCommit


def test_an_idle_batcher_runs_an_item_at_once_and_a_busy_one_gathers_what_queued() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await release.wait()
        return [i * 10 for i in items]

    async def main() -> list[int]:
        commit: GroupCommit[int, int] = GroupCommit(run, in_flight=1)
        first = asyncio.create_task(commit.submit(0))
        await asyncio.sleep(0)  # the first batch starts with the only item there is
        rest = [asyncio.create_task(commit.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50]
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_each_caller_gets_its_own_outcome_and_a_failed_batch_fails_every_caller() -> None:
    async def run(items: Sequence[int]) -> list[int | Exception]:
        if 99 in items:
            raise ConnectionError("the store is down")
        return [ValueError(f"odd {i}") if i % 2 else i for i in items]

    async def main() -> tuple[list[object], list[object]]:
        commit: GroupCommit[int, int] = GroupCommit(run, in_flight=1)
        mixed = await asyncio.gather(*(commit.submit(i) for i in range(4)), return_exceptions=True)
        down = await asyncio.gather(commit.submit(99), return_exceptions=True)
        return mixed, down

    mixed, [down] = asyncio.run(main())
    assert mixed[0] == 0 and mixed[2] == 2
    assert [str(e) for e in (mixed[1], mixed[3])] == ["odd 1", "odd 3"]
    assert isinstance(down, ConnectionError)


@pytest.mark.parametrize("in_flight", [1, 3])
def test_no_more_batches_run_at_once_than_allowed(in_flight: int) -> None:
    running = peak = 0

    async def run(items: Sequence[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return list(items)

    async def main() -> list[int]:
        commit: GroupCommit[int, int] = GroupCommit(run, in_flight=in_flight, max_batch=2)
        return await asyncio.gather(*(commit.submit(i) for i in range(40)))

    assert asyncio.run(main()) == list(range(40))
    assert peak == in_flight


def test_each_batch_is_observed_with_its_size_and_duration_failed_ones_too() -> None:
    heard: list[tuple[int, float]] = []
    release = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        if 99 in items:
            raise ConnectionError("the store is down")
        await release.wait()
        return list(items)

    async def main() -> None:
        commit: GroupCommit[int, int] = GroupCommit(run, in_flight=1, observe=lambda n, s: heard.append((n, s)))
        first = asyncio.create_task(commit.submit(0))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(commit.submit(i)) for i in range(1, 4)]
        await asyncio.sleep(0.05)  # the first batch runs this long
        release.set()
        await asyncio.gather(first, *rest)
        await asyncio.gather(commit.submit(99), return_exceptions=True)

    asyncio.run(main())
    assert [n for n, _ in heard] == [1, 3, 1]
    assert heard[0][1] >= 0.05 > heard[1][1]
