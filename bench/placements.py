"""CPU per order placed by the write side alone: ``CommandGateway.place`` over the real Postgres command store and
the real Kafka log (``api.wiring.write_side``, as ``tradecore api`` builds it), in this process on uvloop, with
``--concurrency`` placements in flight — no HTTP, no server. What the store's round trips and the append cost per
order, free of the API's layers (``bench/order_front.py``) and of the server the end-to-end bench carries
(``bench/order_entry.py``).

    .venv/bin/python bench/placements.py                                   # this tree
    PYTHONPATH=/tmp/wt-base .venv/bin/python bench/placements.py           # another tree's code, same stack

Each of ``--repeat`` rounds places ``--orders`` distinct orders (``--accounts`` accounts) into a fresh namespace;
reported: the median CPU time of this process per order (librdkafka's threads included) and of its event loop's
thread alone, Postgres's (the local stack's server and its backends, when the stack runs it), wall time per order,
orders per group commit, and the event loop's CPU per group commit in each of its three steps — the claim, the append
and the end (the record and the locks' release). The split is exact with one placement in flight (``--concurrency 1``);
with more, a step's awaits also count what other placements ran meanwhile. The last stdout line is one JSON object
with every round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import uvloop

from api import db
from api.store import _Placing
from api.wiring import write_side
from bench.common import check_stack, cleanup, fmt, log, tree_cpu
from commands.decide import Stamp
from commands.gateway import CommandGateway
from commands.models import PlaceOrder
from domain.instruments import InstrumentRegistry
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams import kafka
from streams.eventlog import KafkaEventLog
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.settings import KafkaSettings

EXAMPLE = PlaceOrder.model_json_schema()["examples"][0]


def _orders(count: int, accounts: int) -> list[PlaceOrder]:
    run = uuid.uuid4().hex[:8]
    return [
        PlaceOrder.model_validate({**EXAMPLE, "account_id": f"ACC-{i % accounts}", "client_order_id": f"{run}-{i}"})
        for i in range(count)
    ]


def _cpu_s(roots: list[int]) -> float:
    return sum(sum(tree_cpu(pid).values()) for pid in roots)


STEPS = ((_Placing, "claim_orders", "claim"), (KafkaEventLog, "append", "append"), (_Placing, "end", "end"))


def _timed(method: Callable[..., Awaitable[Any]], spent: dict[str, float], step: str) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return await method(*args, **kwargs)
        finally:
            spent[step] += time.thread_time() - started

    return timed


@contextlib.contextmanager
def _step_cpu(spent: dict[str, float]) -> Iterator[None]:
    """Adds to ``spent`` the event loop thread's CPU seconds in each of a group commit's steps (``STEPS``)."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in STEPS]
    for owner, name, step in STEPS:
        setattr(owner, name, _timed(getattr(owner, name), spent, step))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def _round(
    gateway: CommandGateway, orders: list[PlaceOrder], concurrency: int, postgres: list[int]
) -> dict[str, float | None]:
    batches: list[int] = []
    place_batch = gateway._placements._run_batch  # the group commit's own hook: count orders per commit

    async def counted(batch: Any) -> Any:
        batches.append(len(batch))
        return await place_batch(batch)

    gateway._placements._run_batch = counted
    queue = iter(orders)

    async def placer() -> None:
        for order in queue:
            await gateway.place(order, Stamp(at=datetime.now(UTC), correlation_id="bench"))

    spent = {step: 0.0 for _, _, step in STEPS}
    cpu, loop_cpu, pg, wall = time.process_time(), time.thread_time(), _cpu_s(postgres), time.perf_counter()
    with _step_cpu(spent):
        await asyncio.gather(*(placer() for _ in range(concurrency)))
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    pg, wall = _cpu_s(postgres) - pg, time.perf_counter() - wall
    gateway._placements._run_batch = place_batch
    return {
        "cpu_us_per_order": cpu / len(orders) * 1e6,
        "loop_cpu_us_per_order": loop_cpu / len(orders) * 1e6,
        **{f"{step}_cpu_us_per_commit": seconds / len(batches) * 1e6 for step, seconds in spent.items()},
        "postgres_cpu_us_per_order": pg / len(orders) * 1e6 if postgres else None,
        "wall_us_per_order": wall / len(orders) * 1e6,
        "orders_per_commit": statistics.mean(batches),
    }


async def _main(args: argparse.Namespace) -> list[dict[str, float | None]]:
    prefix = f"bench-placements-{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(topic_prefix=prefix)
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), prefix)
    database = DatabaseSettings()
    db.upgrade(database.url)
    postgres = check_stack().get("postgres", [])  # none when DATABASE_URL names a server of its own
    rounds = []
    try:
        # (the knob only when given: a tree from before it can be measured too)
        knob = {} if args.in_flight is None else {"placements_in_flight": args.in_flight}
        async with write_side(settings, RegistrySettings(), database, InstrumentRegistry.from_file(), **knob) as side:
            await _round(side.gateway, _orders(200, args.accounts), args.concurrency, [])  # warm: connections, plans
            for n in range(args.repeat):
                found = await _round(side.gateway, _orders(args.orders, args.accounts), args.concurrency, postgres)
                log(
                    f"round {n + 1}/{args.repeat}: {found['cpu_us_per_order']:.0f} µs CPU per order "
                    f"(the event loop's {found['loop_cpu_us_per_order']:.0f}), "
                    f"Postgres {fmt(found['postgres_cpu_us_per_order'])} µs, "
                    f"{found['wall_us_per_order']:.0f} µs wall, {found['orders_per_commit']:.1f} orders per commit; "
                    "the event loop's CPU per commit: "
                    + ", ".join(f"{step} {found[f'{step}_cpu_us_per_commit']:.0f} µs" for _, _, step in STEPS)
                )
                rounds.append(found)
    finally:
        if not args.keep:
            cleanup(prefix)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000, help="orders per round")
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=16, help="placements in flight")
    parser.add_argument("--in-flight", type=int, help="group commits at once (default: the gateway's)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the run's namespace")
    args = parser.parse_args()
    rounds = uvloop.run(_main(args))
    cpu = statistics.median(r["cpu_us_per_order"] or 0.0 for r in rounds)
    postgres = [r["postgres_cpu_us_per_order"] for r in rounds if r["postgres_cpu_us_per_order"] is not None]
    batch = statistics.median(r["orders_per_commit"] or 0.0 for r in rounds)
    print(
        f"median: {cpu:.0f} µs CPU per order placed, Postgres {fmt(statistics.median(postgres) if postgres else None)}"
        f" µs, {batch:.1f} orders per group commit"
    )
    print(json.dumps({"benchmark": "placements", "config": vars(args), "rounds": rounds}))


if __name__ == "__main__":
    main()
