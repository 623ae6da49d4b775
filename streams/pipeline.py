"""A whole pipeline in one namespace, run from a script: the backtest and the demo start the processors as real
`tradecore worker` subprocesses (deploy.launch), feed them, and need to know when everything upstream has been
consumed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams import kafka
from streams.errors import StreamsError
from streams.kafka import KafkaSettings, TopicPartition
from streams.kafka.logreader import LogReader
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.processors import ProcessorSettings
from streams.worker import PROCESSORS


class PipelineError(StreamsError):
    """The processors stopped, or did not settle in time."""


def prepare(settings: KafkaSettings) -> None:
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), settings.topic_prefix)


def wait_until_settled(
    settings: KafkaSettings,
    worker: subprocess.Popen[bytes],
    log: Path,
    report: Callable[[int], None] | None = None,
    quiet_s: float = 3.0,
    timeout_s: float = 1800.0,
) -> None:
    """Return once every processor's group has committed up to the end of each of its partitioned inputs, and
    nothing has moved for ``quiet_s`` (an input ending in a transaction marker counts as consumed).

    Broadcast inputs (ticks into risk) are not asked: their positions live in each task's checkpoints, not in the
    group, and nothing is derived from them alone — an order that needs a tick is held by the host's merge until
    the tick is read, so once every partitioned input is committed to its end, every output is written. Only final
    commits are asked for (``kafka.FinalCommits``): an instance's open transaction is not waited on.
    """
    processors = [build(ProcessorSettings()) for build in PROCESSORS.values()]
    observer = LogReader(settings, f"{settings.topic_prefix}backtest-observer")
    inputs = {p.name: [settings.topic_prefix + t for t in p.partitioned] for p in processors}
    partitions = {name: [TopicPartition(*p) for p in observer.partitions(topics)] for name, topics in inputs.items()}
    positions = {(tp.topic, tp.partition) for tps in partitions.values() for tp in tps}
    deadline = time.monotonic() + timeout_s
    last: Any = None
    still_since = time.monotonic()
    commits = kafka.FinalCommits(settings)
    try:
        while True:
            if worker.poll() is not None:
                raise PipelineError(
                    f"the processors stopped on their own (exit {worker.returncode})", hint=f"see {log}"
                )
            ends = observer.ends(positions)  # asked again while a leader is not yet elected or moving
            snapshot, behind = [], 0
            for name, tps in partitions.items():
                for tp in commits.of(f"{settings.topic_prefix}{name}", tps):
                    high, done = ends[(tp.topic, tp.partition)], max(tp.offset, 0)
                    behind += max(0, high - done - 1)
                    snapshot.append((tp.topic, tp.partition, done, high))
            if report is not None:
                report(behind)
            now = time.monotonic()
            if snapshot != last:
                last, still_since = snapshot, now
            elif behind == 0 and now - still_since >= quiet_s:
                return
            if now > deadline:
                raise PipelineError(f"the processors did not settle within {timeout_s:.0f} s", hint=f"see {log}")
            time.sleep(0.5)
    finally:
        commits.close()
        observer.close()
