"""Scale-out benchmark (issue 11's last target): one, two and three `tradecore worker risk` instances work through
the same backlog, and what each order costs.

    .venv/bin/python bench/scaleout.py                     # 100,000 records, 1, 2 and 3 instances, 2 repeats
    .venv/bin/python bench/scaleout.py --quick             # 20,000 records, 1 and 2 instances, once

For each instance count and repeat, a fresh namespace ``bench-scale-<run>-<n>-<r>.`` gets the same trading session
over the real Binance BTCUSDT quotes (``tests.support.market_log``: orders and cancels over many accounts, about one
tick per dozen orders), appended before any instance starts. Then ``n`` `tradecore worker risk --instance i`
processes start together and share the backlog through the group (each its share of the account partitions, each
reading the ticks itself); the run ends when risk's group has committed every partitioned input to its end. We
record the wall time from the first start to that commit, the CPU the instances used (their process trees, start-up
included, and without the CPU each instance spent before it served /metrics: importing and starting Python), the
orders decided per second and the CPU per record.

The issue's target: two instances on a machine with ≥ 2 free cores process ≥ 1.6 times one instance's orders/s;
where the machine cannot give them the cores (this one has 2 cores for the broker, Postgres, the registry and the
instances), the CPU per order stays constant across 1, 2 and 3 instances. The reference, in the same run: a raw
``read_committed`` read of the same backlog without decoding. Medians (min-max); the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import tree_cpu
from deploy import launch
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.logreader import LogReader
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics
from streams.processors import ProcessorSettings, RiskProcessor
from streams.settings import KafkaSettings
from tests.support.log import append
from tests.support.market_log import session


def behind(settings: KafkaSettings, group: str, topics: list[str]) -> int:
    """Records of ``topics`` the group has not committed past (a transaction marker at the end counts as read)."""
    consumer = kafka.consumer(settings, group)
    try:
        parts = [
            kafka.TopicPartition(t, p) for t in topics for p in consumer.list_topics(t, timeout=30).topics[t].partitions
        ]
        left = 0
        for tp in consumer.committed(parts, timeout=30):
            high = consumer.get_watermark_offsets(kafka.TopicPartition(tp.topic, tp.partition), timeout=30)[1]
            left += max(0, high - max(tp.offset, 0) - 1)
        return left
    finally:
        consumer.close()


def raw_read(settings: KafkaSettings) -> dict[str, float]:
    """The whole namespace's partitioned inputs of risk and its ticks, read_committed, not decoded."""
    risk = RiskProcessor(ProcessorSettings())
    reader = LogReader(settings, f"bench-scale-read-{secrets.token_hex(4)}")
    try:
        topics = [settings.topic_prefix + t for t in (*risk.partitioned, *risk.broadcast)]
        ends = reader.ends(reader.partitions(topics))
        wall, cpu = time.monotonic(), time.process_time()
        reader.assign(dict.fromkeys(ends, 0))
        count = sum(len(batch) for batch in reader.read(ends, max_records=5000))
        return {"wall_s": time.monotonic() - wall, "cpu_s": time.process_time() - cpu, "records": count}
    finally:
        reader.close()


def one_run(client: Any, records: list[Any], instances: int, tag: str, workdir: Path) -> dict[str, Any]:
    settings = KafkaSettings(topic_prefix=f"bench-scale-{tag}.")
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), settings.topic_prefix)
    register_all(client, settings.topic_prefix)
    risk = RiskProcessor(ProcessorSettings())
    partitioned = [settings.topic_prefix + t for t in risk.partitioned]
    services: list[launch.Service] = []
    try:
        append(settings, client, records)
        reference = raw_read(settings)
        env = {**os.environ, "TRADECORE_TOPIC_PREFIX": settings.topic_prefix}
        wall = time.monotonic()
        for i in range(instances):
            services.append(
                launch.start_worker(workdir / f"{tag}-{i}.log", env, names=["risk"], options=["--instance", str(i)])
            )
        pids = [s.process.pid for s in services]
        cpu = {pid: t for p in pids for pid, t in tree_cpu(p).items()}
        group = f"{settings.topic_prefix}{risk.name}"
        while behind(settings, group, partitioned) > 0:
            if any(s.process.poll() is not None for s in services):
                raise RuntimeError(f"an instance stopped; see {workdir}")
            if time.monotonic() - wall > 1800:
                raise TimeoutError(f"{instances} instance(s) did not finish in 30 min; see {workdir}")
            time.sleep(0.2)
        elapsed = time.monotonic() - wall
        used = sum(t - cpu.get(pid, 0.0) for p in pids for pid, t in tree_cpu(p).items())
        startup = sum(cpu.values())
        return {
            "instances": instances,
            "wall_s": elapsed,
            "cpu_s": used + startup,
            "startup_cpu_s": startup,
            "records_per_s": len(records) / elapsed,
            "cpu_us_per_record": (used + startup) / len(records) * 1e6,
            "work_cpu_us_per_record": used / len(records) * 1e6,
            "reference": reference,
        }
    finally:
        for service in services:
            service.stop()
        delete_namespace(kafka.admin(settings), settings.topic_prefix)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.records, args.instances, args.repeat = 20_000, [1, 2], 1
    client = registry_client(RegistrySettings())
    run = secrets.token_hex(3)
    records = session(int(args.records / 1.18))  # orders and cancels, with about one tick per 12 orders
    print(f"{len(records):,} records per run", file=sys.stderr)
    results: dict[int, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as directory:
        for r in range(args.repeat):
            for n in args.instances:
                out = one_run(client, records, n, f"{run}-{n}-{r}", Path(directory))
                results.setdefault(n, []).append(out)
                print(
                    f"{n} instance(s): {out['wall_s']:.1f} s wall, {out['cpu_s']:.1f} s CPU "
                    f"({out['startup_cpu_s']:.1f} s of it before the instances served /metrics), "
                    f"{out['records_per_s']:,.0f} records/s, {out['cpu_us_per_record']:.0f} µs CPU per record; "
                    f"raw read {out['reference']['wall_s']:.2f} s",
                    file=sys.stderr,
                )
    one = statistics.median(o["records_per_s"] for o in results[min(results)])
    one_cpu = statistics.median(o["cpu_us_per_record"] for o in results[min(results)])
    summary = {
        n: {
            "wall_s": spread([o["wall_s"] for o in runs]),
            "records_per_s": spread([o["records_per_s"] for o in runs]),
            "cpu_us_per_record": spread([o["cpu_us_per_record"] for o in runs]),
            "speedup": statistics.median(o["records_per_s"] for o in runs) / one,
            "cpu_per_record_ratio": statistics.median(o["cpu_us_per_record"] for o in runs) / one_cpu,
            "work_cpu_us_per_record": spread([o["work_cpu_us_per_record"] for o in runs]),
            "raw_read_s": spread([o["reference"]["wall_s"] for o in runs]),
        }
        for n, runs in results.items()
    }
    for n, s in summary.items():
        print(
            f"{n}: {s['records_per_s']['median']:,.0f} records/s ({s['speedup']:.2f}x one), "
            f"{s['cpu_us_per_record']['median']:.0f} µs CPU per record ({s['cpu_per_record_ratio']:.2f}x one; "
            f"{s['work_cpu_us_per_record']['median']:.0f} µs after start-up), "
            f"wall {s['wall_s']['median']:.1f} s; raw read {s['raw_read_s']['median']:.2f} s",
            file=sys.stderr,
        )
    print(json.dumps({"records": len(records), "summary": summary, "runs": results}))


if __name__ == "__main__":
    main()
