"""Where an order's latency goes inside the processor host (issue 4): the risk host in this process, instrumented.

    .venv/bin/python bench/host_latency.py [--rate 1000] [--duration 8] [--repeat 3]

``bench/processors.py --phases latency`` measures order placed → decision visible against a ``tradecore worker risk``
process, beside the raw record's own visibility. This splits the decision's path, per order, at the moments only
the host knows — the same OrderFlow, Visibility consumer and paced producer, default ``HostConfig``:

* record visible → handled: the harness's read_committed consumer sees the order's record / the host hands it to
  the processor (negative when the host is first: the harness's own read is slower than the host's);
* handled → commit start: waiting for the rest of the batch (and a commit in progress) before its commit begins;
* commit call: the producer's ``_commit`` on its commit thread (offsets, ``commit_transaction``), per transaction —
  the host takes the next batch's records meanwhile;
* commit end → decision visible: transaction markers written, the harness's consumer fetching and decoding.

The host shares this process (and its GIL) with the load generator and the consumer, so every figure is somewhat
above what a separate worker process sees; read them as shares of the path. Progress on stderr, the table on
stdout, the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import common
from bench.processors import OrderFlow, Visibility, paced


class Timed:
    """Wraps risk: notes when each order is handed to the processor."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.partitioned = inner.partitioned
        self.broadcast = inner.broadcast
        self.handled: dict[str, float] = {}

    def handle(self, topic: str, event: Any) -> Sequence[Any]:
        order_id = getattr(event, "order_id", None)
        if order_id is not None and topic == "orders":
            self.handled[order_id] = time.perf_counter()
        return list(self.inner.handle(topic, event))

    def reset(self) -> None:
        self.inner.reset()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from schemas.serde import register_all
    from schemas.settings import RegistrySettings
    from streams import kafka
    from streams.host.runner import ProcessorHost
    from streams.kafka.registry import registry_client
    from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
    from streams.kafka.transactions import TransactionalProducer
    from streams.processors import ProcessorSettings, RiskProcessor
    from streams.settings import KafkaSettings

    os.chdir(common.ROOT)
    namespace = f"bench-hostlat-{secrets.token_hex(3)}."
    os.environ["TRADECORE_TOPIC_PREFIX"] = namespace
    settings = KafkaSettings()
    admin = kafka.admin(settings)
    client = registry_client(RegistrySettings())
    runs: list[dict[str, Any]] = []
    try:
        ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), namespace)
        register_all(client, namespace)
        flow = OrderFlow(client, namespace, f"hl{secrets.token_hex(2)}")
        flow.tick()
        seen = Visibility(client, namespace)
        risk = Timed(RiskProcessor(ProcessorSettings()))
        host = ProcessorHost(risk, settings, client)
        commits: list[tuple[float, float]] = []
        commit = TransactionalProducer._commit

        def timed_commit(producer: TransactionalProducer, offsets: Any, metadata: Any) -> None:
            began = time.perf_counter()  # (on the producer's commit thread: the host goes on meanwhile)
            commit(producer, offsets, metadata)
            commits.append((began, time.perf_counter()))

        TransactionalProducer._commit = timed_commit  # type: ignore[method-assign,assignment]
        stop = threading.Event()
        thread = threading.Thread(target=host.run, args=(stop,), daemon=True)
        thread.start()
        try:
            while paced(flow, seen, 10, 1.0)["missing"]:  # group joined, state rebuilt, reference price read
                pass
            for repeat in range(args.repeat):
                flow.tick()
                before, first_commit = set(risk.handled), len(commits)
                out = paced(flow, seen, args.rate, args.duration)
                windows = np.array(commits[first_commit:])
                ids = [o for o in seen.decided if o in risk.handled and o not in before and o in seen.placed]
                handled = np.array([risk.handled[o] for o in ids])
                # The commit holding an order: the first to begin after it was handled.
                index = np.searchsorted(windows[:, 0], handled)
                ok = index < len(windows)
                begins, ends = windows[index[ok], 0], windows[index[ok], 1]
                decided = np.array([seen.decided[o][0] for o in ids])[ok]
                placed = np.array([seen.placed[o] for o in ids])
                run = {
                    "decision": out["risk"],
                    "raw": out["raw"],
                    "visible_to_handled": common.percentiles_ms(handled - placed),
                    "handled_to_commit": common.percentiles_ms(begins - handled[ok]),
                    "commit_call": common.percentiles_ms(windows[:, 1] - windows[:, 0]),
                    "commit_to_visible": common.percentiles_ms(decided - ends),
                    "commits_per_s": len(windows) / args.duration,
                }
                runs.append(run)
                common.log(
                    f"  [{repeat + 1}/{args.repeat}] decision p50/p99 {common.fmt(out['risk']['p50_ms'], 1)}/"
                    f"{common.fmt(out['risk']['p99_ms'], 1)} ms; commits/s {run['commits_per_s']:.0f}"
                )
        finally:
            stop.set()
            thread.join(60)
            seen.close()
    finally:
        common.cleanup(namespace)
    parts = ("decision", "raw", "visible_to_handled", "handled_to_commit", "commit_call", "commit_to_visible")
    return {
        "benchmark": "host_latency",
        "rate": args.rate,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "parts": {
            part: {k: statistics.median(r[part][k] for r in runs) for k in ("p50_ms", "p99_ms")} for part in parts
        },
        "commits_per_s": statistics.median(r["commits_per_s"] for r in runs),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="orders per second (default 1,000)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per repetition (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians reported; default 3)")
    args = parser.parse_args(argv)
    common.check_stack()
    results = measure(args)
    print(f"risk host in-process, {args.rate}/s for {args.duration:g} s, medians of {args.repeat}:")
    for part, figures in results["parts"].items():
        print(
            f"  {part:<20} p50 {common.fmt(figures['p50_ms'], 1):>7} ms   p99 {common.fmt(figures['p99_ms'], 1):>7} ms"
        )
    print(f"  commits per second   {results['commits_per_s']:.0f}")
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
