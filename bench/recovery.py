"""Recovery benchmark (issue 11, item 7, in part): how soon a restarted risk host is live again, from its checkpoints
(and the tail after them) and by a full replay of its history, beside the raw time to read that history.

    .venv/bin/python bench/recovery.py --records 100000 1000000   # one namespace per history size
    .venv/bin/python bench/recovery.py --quick                     # 20,000 records, one repeat

For each history size: a fresh namespace ``bench-recovery-<run>.`` gets a trading session over the real Binance
BTCUSDT quotes (``tests.support.market_log``: orders, cancels and about one tick per dozen orders); a risk host
(``streams.host.runner.ProcessorHost``, in this process, as `tradecore worker risk` hosts it, checkpoint settings
at their defaults) takes all of it live. Then, ``--repeat`` times each:

* restart from checkpoints: a new host on the same group, timed from ``run`` to live (the ``live`` event: every
  partition restored and its tail replayed, the consumers reading on) — group join included;
* full replay: the same with ``restore_checkpoints=False`` (what every restart did before checkpoints);
* reference: a ``read_committed`` reader reading the whole history once, without decoding (the floor of any replay).

Medians (min-max) of wall time and this process's CPU time; the last stdout line is JSON.
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
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.logreader import LogReader
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics
from streams.processors import ProcessorSettings, RiskProcessor
from streams.settings import KafkaSettings
from tests.support.log import append
from tests.support.market_log import session


def restart(settings: KafkaSettings, client: Any, config: HostConfig, until_consumed: int = 0) -> dict[str, float]:
    """Start a risk host; once live (and, with ``until_consumed``, once it took that many records) stop it."""
    host = ProcessorHost(RiskProcessor(ProcessorSettings()), settings, client, config)
    stop = threading.Event()
    wall, cpu = time.monotonic(), time.process_time()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    host.live.wait(3600)
    live_s, live_cpu = time.monotonic() - wall, time.process_time() - cpu
    while host.stats.consumed < until_consumed:
        time.sleep(0.5)
    stop.set()
    thread.join(120)
    return {"wall_s": live_s, "cpu_s": live_cpu, "replayed": host.stats.replayed, "consumed": host.stats.consumed}


def read_all(settings: KafkaSettings) -> dict[str, float]:
    reader = LogReader(settings, f"bench-recovery-read-{secrets.token_hex(4)}")
    wall, cpu = time.monotonic(), time.process_time()
    positions = reader.partitions([settings.topic_prefix + "orders", settings.topic_prefix + "ticks"])
    stops = reader.ends(positions)
    reader.assign(dict.fromkeys(positions, 0))
    count = sum(len(batch) for batch in reader.read(stops, max_records=5000))
    reader.close()
    return {"wall_s": time.monotonic() - wall, "cpu_s": time.process_time() - cpu, "records": count}


def summary(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def cell(row: dict[str, Any], mode: str) -> str:
    if mode not in row:
        return "—"
    m = row[mode]
    return f"{m['wall_s']['median']:.1f} s ({m['cpu_s']['median']:.1f} s), {m['replayed']:,} replayed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full-replay-max", type=int, default=1_000_000, help="no full replay above this size")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.records, args.repeat = [20_000], 1
    client = registry_client(RegistrySettings())
    results = []
    for records in args.records:
        settings = KafkaSettings(topic_prefix=f"bench-recovery-{secrets.token_hex(4)}.")
        ensure_topics(
            kafka.admin(settings),
            TopicLayout.for_cluster(cluster_size(kafka.admin(settings)), settings.partitions),
            settings.topic_prefix,
        )
        register_all(client, settings.topic_prefix)
        try:
            log = session(int(records / 1.18))  # orders and cancels, with about one tick per 12 orders
            print(f"{records:,}: appending {len(log):,} records", file=sys.stderr)
            append(settings, client, log)
            first = restart(settings, client, HostConfig(), until_consumed=len(log))
            print(f"  taken live: {first}", file=sys.stderr)
            row: dict[str, Any] = {"records": len(log)}
            modes = {"checkpoint": HostConfig(), "full": HostConfig(restore_checkpoints=False)}
            for mode, config in modes.items():
                if mode == "full" and records > args.full_replay_max:
                    continue
                runs = [restart(settings, client, config) for _ in range(args.repeat)]
                print(f"  {mode}: {runs}", file=sys.stderr)
                row[mode] = {
                    "wall_s": summary(runs, "wall_s"),
                    "cpu_s": summary(runs, "cpu_s"),
                    "replayed": runs[0]["replayed"],
                }
            reads = [read_all(settings) for _ in range(args.repeat)]
            row["read"] = {"wall_s": summary(reads, "wall_s"), "cpu_s": summary(reads, "cpu_s")}
            results.append(row)
        finally:
            delete_namespace(kafka.admin(settings), settings.topic_prefix)
    print("| history | restart from checkpoint: wall (CPU), replayed | full replay: wall (CPU) | read history |")
    print("|---|---|---|---|")
    for row in results:
        read = f"{row['read']['wall_s']['median']:.1f} s"
        print(f"| {row['records']:,} | {cell(row, 'checkpoint')} | {cell(row, 'full')} | {read} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
