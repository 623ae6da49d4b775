"""Recovery benchmark (issue 11, item 7, in part): how soon a restarted risk or signals host is live again, and how
much memory it holds then, from its checkpoints (and the tail after them) and by a full replay of its history, beside
the raw time to read that history.

    .venv/bin/python bench/recovery.py --records 100000                          # risk, 3 repeats
    .venv/bin/python bench/recovery.py --records 1000000 --repeat 1
    .venv/bin/python bench/recovery.py --processor signals --records 100000
    .venv/bin/python bench/recovery.py --quick                                   # 20,000 records, one repeat
    .venv/bin/python bench/recovery.py --records 10000000 --repeat 1 --keep      # keeps the namespace, names it
    .venv/bin/python bench/recovery.py --namespace bench-recovery-1a2b3c4d. --repeat 5 --only checkpoint

For each history size: a fresh namespace ``bench-recovery-<run>.`` gets a history (``bench/recovery_history.py``):
for risk, days of trading over the real Binance BTCUSDT quotes (orders, cancels, ticks, and the execution reports the
simulated venue derives, on ``executions.by-account``), about 50,000 records per day of event time; for signals,
the quotes as ticks, lap after lap. A host (``streams.host.runner.ProcessorHost``, as `tradecore worker <processor>`
hosts it, checkpointing every ``--checkpoint-records`` records per partition, 20,000 by default) takes all of it live
(its 30 s checkpoint timer does not fire once it is idle, so the last records taken are the restart's tail).
Then, ``--repeat`` times each:

* restart from checkpoints: a new host on the same group, timed from ``run`` to live (the ``live`` event: every
  partition restored and its tail replayed, the consumers reading on) — group join included;
* full replay: the same with ``restore_checkpoints=False`` (what every restart did before checkpoints);
* reference: a ``read_committed`` reader reading the whole history once, without decoding (the floor of any replay).

``--keep`` leaves the namespace (its history and checkpoints) in place and names it; ``--namespace`` restarts on such
a kept namespace again without writing or taking anything (a 10M history takes ≈ 45 minutes to write and take live).
``--memory`` adds where the restarted host's memory is once live: Python's own allocations (``tracemalloc``, by
file) and the anonymous and file-backed parts of its RSS.

Every host runs in a process of its own (spawned, so it holds nothing of the benchmark's): its wall and CPU time from
``run`` to live, and its resident set size (RSS) once live, are the host's alone. Medians (min-max); the load average
at the start and end of the run; the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import secrets
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl
import psutil

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.recovery_history import risk_history, ticks_frames
from schemas.events import Event, TickIngested
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.eventlog import KafkaEventLog
from streams.host.processor import Processor, event_time_ms
from streams.host.runner import HostConfig, ProcessorHost
from streams.host.trim import libc
from streams.kafka.logreader import LogReader
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics
from streams.processors import ProcessorSettings, RiskProcessor, SignalsProcessor
from streams.runtime import tune_collector
from streams.settings import KafkaSettings

PROCESSORS: dict[str, Callable[[ProcessorSettings], Processor]] = {"risk": RiskProcessor, "signals": SignalsProcessor}
INPUTS = {"risk": ("orders", "ticks", "executions.by-account"), "signals": ("ticks",)}


def memory_parts(traced: bool) -> dict[str, Any]:
    """This process's RSS split: anonymous and file-backed (``/proc/self/status``), what glibc's malloc holds in use
    and free (``mallinfo2``), and, when ``tracemalloc`` runs, Python's own allocations by file (the top ten)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    parts: dict[str, Any] = {k: int(status[k].split()[0]) / 1024 for k in ("RssAnon", "RssFile", "RssShmem")}
    info = _mallinfo2()
    parts |= {"malloc_in_use_mb": info.uordblks / 2**20, "malloc_free_mb": info.fordblks / 2**20}
    parts["malloc_mmapped_mb"] = info.hblkhd / 2**20
    if traced:
        snapshot = tracemalloc.take_snapshot()
        parts["python_mb"] = sum(s.size for s in snapshot.statistics("filename")) / 2**20
        parts["python_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        parts["python_top"] = [
            (str(s.traceback), round(s.size / 2**20, 1)) for s in snapshot.statistics("filename")[:10]
        ]
    return parts


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _mallinfo2() -> _MallInfo2:
    c = libc()
    assert c is not None, "--memory reads glibc's mallinfo2"
    c.mallinfo2.restype = _MallInfo2
    info: _MallInfo2 = c.mallinfo2()
    return info


def restart(
    processor: str, settings: KafkaSettings, config: HostConfig, until_consumed: int = 0, traced: bool = False
) -> dict[str, Any]:
    """Start a host; once live (and, with ``until_consumed``, once it took that many records) measure it and stop it.

    Run in a process of its own: the CPU time and the RSS are the host's.
    """
    tune_collector()  # as every tradecore process does (streams.runtime)
    if traced:
        tracemalloc.start()
    client = registry_client(RegistrySettings())
    host = ProcessorHost(PROCESSORS[processor](ProcessorSettings()), settings, client, config)
    stop = threading.Event()
    wall, cpu = time.monotonic(), time.process_time()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    host.live.wait(3600)
    live_s, live_cpu = time.monotonic() - wall, time.process_time() - cpu
    while host.stats.consumed < until_consumed:
        time.sleep(0.5)
    took_s, took_cpu = time.monotonic() - wall, time.process_time() - cpu
    rss = psutil.Process().memory_info().rss
    parts = memory_parts(traced)
    stop.set()
    thread.join(120)
    return {
        "memory": parts,
        "wall_s": live_s,
        "cpu_s": live_cpu,
        "rss_mb": rss / 2**20,
        "replayed": host.stats.replayed,
        "consumed": host.stats.consumed,
        "took_s": took_s,  # to live and then through ``until_consumed`` records
        "took_cpu_s": took_cpu,
        "held_max": host.stats.held_max,
    }


def in_own_process(
    processor: str, settings: KafkaSettings, config: HostConfig, until: int = 0, traced: bool = False
) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(restart, processor, settings, config, until, traced).result()


def append(settings: KafkaSettings, client: Any, history: Iterable[tuple[str, str, Event]]) -> int:
    """Every (topic, key, event) to its topic; the number appended. An event's bytes are those of its own topic
    (``executions.by-account`` holds the bytes of ``executions``: the repartitioner forwards them unchanged)."""
    register_all(client, settings.topic_prefix)
    serializers: dict[str, EventSerializer] = {}
    producer = kafka.producer(settings)
    count = 0
    for topic, key, event in history:
        route = event.route().topic
        ser = serializers.get(route)
        if ser is None:
            ser = serializers[route] = EventSerializer(client, route, topic_prefix=settings.topic_prefix)
        value = ser.serialize(event)
        producer.produce(settings.topic_prefix + topic, key=key.encode(), value=value, timestamp=event_time_ms(event))
        producer.poll(0)
        count += 1
    assert producer.flush(120) == 0
    return count


def append_frames(settings: KafkaSettings, client: Any, frames: Iterable[pl.DataFrame]) -> int:
    """Every frame of ticks to ``ticks``, a frame at a time (the batch codec, as `tradecore ingest file` writes);
    the number appended."""
    register_all(client, settings.topic_prefix)
    log = KafkaEventLog(settings, client)
    count = 0
    try:
        for frame in frames:
            answers = asyncio.run(log.append_frame(TickIngested, frame))
            failed = [a for a in answers if isinstance(a, Exception)]
            assert not failed, failed[:3]
            count += len(answers)
            print(f"  {count:,} ticks appended", file=sys.stderr)
    finally:
        assert log.close() == 0
    return count


def read_all(processor: str, settings: KafkaSettings) -> dict[str, float]:
    reader = LogReader(settings, f"bench-recovery-read-{secrets.token_hex(4)}")
    wall, cpu = time.monotonic(), time.process_time()
    positions = reader.partitions([settings.topic_prefix + topic for topic in INPUTS[processor]])
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
    wall, cpu, rss = m["wall_s"], m["cpu_s"]["median"], m["rss_mb"]["median"]
    return (
        f"{wall['median']:.1f} s ({cpu:.1f} s CPU), {wall['min']:.1f}-{wall['max']:.1f} s, "
        f"{m['replayed']:,} replayed, RSS {rss:.0f} MB"
    )


def history(args: argparse.Namespace, client: Any, records: int) -> tuple[KafkaSettings, int, float]:
    """A fresh namespace with ``records`` of history, taken live by a checkpointing host: its settings, the records
    appended and that host's RSS."""
    settings = KafkaSettings(topic_prefix=f"bench-recovery-{secrets.token_hex(4)}.")
    ensure_topics(
        kafka.admin(settings),
        TopicLayout.for_cluster(cluster_size(kafka.admin(settings)), settings.partitions),
        settings.topic_prefix,
    )
    register_all(client, settings.topic_prefix)
    print(f"{records:,}: appending the {args.processor} history to {settings.topic_prefix}", file=sys.stderr)
    if args.processor == "risk":
        appended = append(settings, client, risk_history(records))
    else:
        appended = append_frames(settings, client, ticks_frames(records))
    taking = HostConfig(checkpoint_records=args.checkpoint_records)
    first = in_own_process(args.processor, settings, taking, until=appended)
    print(f"  taken live: {first}", file=sys.stderr)
    return settings, appended, first["rss_mb"]


def restarts(args: argparse.Namespace, settings: KafkaSettings, records: int) -> dict[str, Any]:
    """``--repeat`` restarts of each mode asked for, and as many reads of the history."""
    row: dict[str, Any] = {"records": records}
    modes = {"checkpoint": HostConfig(), "full": HostConfig(restore_checkpoints=False)}
    for mode, config in modes.items():
        if mode not in args.only or (mode == "full" and records > args.full_replay_max):
            continue
        runs = [in_own_process(args.processor, settings, config, traced=args.memory) for _ in range(args.repeat)]
        print(f"  {mode}: {runs}", file=sys.stderr)
        row[mode] = {
            "wall_s": summary(runs, "wall_s"),
            "cpu_s": summary(runs, "cpu_s"),
            "rss_mb": summary(runs, "rss_mb"),
            "replayed": runs[0]["replayed"],
            "memory": [r["memory"] for r in runs],
        }
    reads = [read_all(args.processor, settings) for _ in range(args.repeat)]
    row["read"] = {"wall_s": summary(reads, "wall_s"), "cpu_s": summary(reads, "cpu_s")}
    row["records"] = row["records"] or int(reads[0]["records"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processor", choices=sorted(PROCESSORS), default="risk")
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--checkpoint-records",
        type=int,
        default=HostConfig.checkpoint_records,
        help="checkpoint interval of the host that takes the history live (what the restart's tail is bounded by)",
    )
    parser.add_argument("--full-replay-max", type=int, default=1_000_000, help="no full replay above this size")
    parser.add_argument("--only", nargs="+", choices=["checkpoint", "full"], default=["checkpoint", "full"])
    parser.add_argument("--keep", action="store_true", help="leave each history's namespace in place, named")
    parser.add_argument("--namespace", nargs="+", default=[], help="restart on these kept namespaces instead")
    parser.add_argument("--memory", action="store_true", help="where each restarted host's memory is, once live")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.records, args.repeat = [20_000], 1
    client = registry_client(RegistrySettings())
    load = [os.getloadavg()]
    results = []
    if args.namespace:  # kept histories: restarted only
        results = [restarts(args, KafkaSettings(topic_prefix=prefix), 0) for prefix in args.namespace]
    else:
        for records in args.records:
            settings, appended, taken_rss = history(args, client, records)
            try:
                results.append(restarts(args, settings, appended) | {"taken_live_rss_mb": taken_rss})
            finally:
                if args.keep:
                    print(f"  kept: --namespace {settings.topic_prefix}", file=sys.stderr)
                else:
                    delete_namespace(kafka.admin(settings), settings.topic_prefix)
    load.append(os.getloadavg())
    print(f"{args.processor}; load average (1, 5, 15 min) at the start {load[0]}, at the end {load[1]}")
    print("| history | from checkpoints: wall (CPU), min-max, replayed, RSS | full replay: the same | read history |")
    print("|---|---|---|---|")
    for row in results:
        read = f"{row['read']['wall_s']['median']:.1f} s ({row['read']['cpu_s']['median']:.1f} s CPU)"
        print(f"| {row['records']:,} | {cell(row, 'checkpoint')} | {cell(row, 'full')} | {read} |")
    print(json.dumps({"processor": args.processor, "load": load, "results": results}))


if __name__ == "__main__":
    main()
