"""Joining-instance benchmark (issue 11, item 7's joining instance; item 3): how soon a second risk instance is live
on the partitions it takes, and what the partitions it does not take replay (target: nothing).

    .venv/bin/python bench/rebalance.py                    # 50,000 records of history, 3 joins
    .venv/bin/python bench/rebalance.py --quick            # 10,000 records, 1 join

A fresh namespace ``bench-rebalance-<run>.`` gets a trading session over the real Binance BTCUSDT quotes
(``tests.support.market_log``); risk instance 0 (``streams.host.runner.ProcessorHost`` in this process, as
`tradecore worker risk --instance 0` hosts it) takes all of it live. Then, ``--repeat`` times: instance N joins
(a second host in this process, its own consumer, producer and transactional id), and once the group has moved
its share we record

* live after assignment: from the joiner's consumer being handed its partitions to the joiner live on them (each
  restored from its checkpoint, its tail replayed, the consumers reading on) — the issue's target, ≤ 5 s;
* join → live: from the joiner's start (group join and the first instance's revocation included);
* CPU: this process's, over join → live (both instances: the first's commit on revocation, the joiner's restore);
* the records the kept partitions replayed on the first instance, and its tasks rebuilt (target 0 and none);
* references, in the same run: a raw ``read_committed`` read (no decoding) of the moved partitions' tail — their
  partitioned inputs from the offsets of the checkpoints the joiner restored up to the group's committed offsets —
  and of the moved partitions' whole history (the least a join that replays from offset 0 must read).

The joiner then stops; under static membership its partitions return to instance 0 once its session times out
(about 20 s) before the next join. Medians (min-max); the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host import checkpoints
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.logreader import LogReader, Position
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics
from streams.processors import ProcessorSettings, RiskProcessor
from streams.settings import KafkaSettings
from tests.support.log import append
from tests.support.market_log import session


class Instance:
    """One risk host running in a thread of this process."""

    def __init__(self, settings: KafkaSettings, client: Any, instance: int) -> None:
        config = HostConfig(instance=str(instance))
        self.host = ProcessorHost(RiskProcessor(ProcessorSettings()), settings, client, config)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.host.run, args=(self.stop,), name=f"risk-{instance}")
        self.thread.start()

    @property
    def held(self) -> set[int]:
        return set(self.host.tasks.by_key)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(120)


def wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def committed(settings: KafkaSettings, group: str, positions: list[Position]) -> dict[Position, int]:
    consumer = kafka.consumer(settings, group)
    try:
        found = consumer.committed([kafka.TopicPartition(t, p) for t, p in positions], timeout=30)
    finally:
        consumer.close()
    return {(c.topic, c.partition): max(c.offset, 0) for c in found}


def raw_read(settings: KafkaSettings, starts: dict[Position, int], stops: dict[Position, int]) -> dict[str, float]:
    """Read ``starts`` → ``stops`` read_committed without decoding: wall, CPU, records."""
    wanted = {tp: stop for tp, stop in stops.items() if stop > starts.get(tp, 0)}
    wall, cpu = time.monotonic(), time.process_time()
    count = 0
    if wanted:
        reader = LogReader(settings, f"bench-rebalance-read-{secrets.token_hex(4)}")
        reader.assign({tp: starts.get(tp, 0) for tp in wanted})
        count = sum(len(batch) for batch in reader.read(wanted, max_records=5000))
        reader.close()
    return {"wall_s": time.monotonic() - wall, "cpu_s": time.process_time() - cpu, "records": count}


def references(settings: KafkaSettings, host: ProcessorHost, moved: list[int]) -> dict[str, dict[str, float]]:
    """Raw reads of the moved partitions' tail (after the checkpoints the joiner restored) and whole history."""
    inputs = host.topics.partitioned
    positions = [(topic, p) for topic in inputs for p in moved]
    stops = committed(settings, host.group, positions)
    tail: dict[Position, int] = {}
    assert host.checkpoints is not None
    for p in moved:
        found = checkpoints.load(settings, f"bench-rebalance-cp-{secrets.token_hex(4)}", host.checkpoints, p)
        if isinstance(found, checkpoints.Checkpoint):
            tail |= {(host.inputs + t, q): o for (t, q), o in found.offsets.items() if host.inputs + t in inputs}
    return {"tail": raw_read(settings, tail, stops), "history": raw_read(settings, {}, stops)}


def join(settings: KafkaSettings, client: Any, first: Instance, instance: int) -> dict[str, Any]:
    """Instance ``instance`` joins ``first``: timings, what the first replayed, and the references."""
    replayed, rebuilt = first.host.stats.replayed, dict(first.host.stats.rebuilt)
    wall, cpu = time.monotonic(), time.process_time()
    joiner = Instance(settings, client, instance)
    try:
        wait(lambda: joiner.host.live.is_set() and joiner.held and len(first.held | joiner.held) == 6, 120, "join")
        wait(lambda: first.host.live.is_set() and not first.held & joiner.held, 60, "the first instance to let go")
        moved = sorted(joiner.held)
        run: dict[str, Any] = {
            "live_after_assignment_s": joiner.host.stats.live_after_s,
            "join_to_live_s": time.monotonic() - wall,
            "cpu_s": time.process_time() - cpu,
            "moved": moved,
            "tail_replayed": joiner.host.stats.replayed,
            "restored": joiner.host.stats.checkpoints.get("restored", 0),
            "kept_replayed": first.host.stats.replayed - replayed,
            "kept_rebuilt": sum(first.host.stats.rebuilt.values()) - sum(rebuilt.values()),
        }
        run["reference"] = references(settings, joiner.host, moved)
    finally:
        joiner.close()
    # Its partitions come back to the first instance once the joiner's session times out.
    wait(lambda: first.held == set(range(6)) and first.host.live.is_set(), 90, "the partitions to come back")
    return run


def spread(runs: list[dict[str, Any]], *path: str) -> dict[str, float]:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.records, args.repeat = 10_000, 1
    client = registry_client(RegistrySettings())
    settings = KafkaSettings(topic_prefix=f"bench-rebalance-{secrets.token_hex(4)}.")
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), settings.topic_prefix)
    register_all(client, settings.topic_prefix)
    first = None
    try:
        log = session(int(args.records / 1.18))  # orders and cancels, with about one tick per 12 orders
        print(f"appending {len(log):,} records", file=sys.stderr)
        append(settings, client, log)
        first = Instance(settings, client, 0)
        wait(lambda: first.host.stats.consumed >= len(log), 1800, "instance 0 to take the history")
        print(f"instance 0 took {first.host.stats.consumed:,} records live", file=sys.stderr)
        runs = []
        for i in range(args.repeat):
            runs.append(join(settings, client, first, i + 1))
            print(f"join {i + 1}: {runs[-1]}", file=sys.stderr)
    finally:
        if first is not None:
            first.close()
        delete_namespace(kafka.admin(settings), settings.topic_prefix)
    result = {
        "records": len(log),
        "joins": len(runs),
        "live_after_assignment_s": spread(runs, "live_after_assignment_s"),
        "join_to_live_s": spread(runs, "join_to_live_s"),
        "cpu_s": spread(runs, "cpu_s"),
        "tail_replayed": spread(runs, "tail_replayed"),
        "kept_replayed": max(r["kept_replayed"] for r in runs),
        "kept_rebuilt": max(r["kept_rebuilt"] for r in runs),
        "tail_read_s": spread(runs, "reference", "tail", "wall_s"),
        "history_read_s": spread(runs, "reference", "history", "wall_s"),
        "history_records": spread(runs, "reference", "history", "records"),
        "runs": runs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
