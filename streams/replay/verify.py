"""`tradecore verify-processors`: re-run processors over a namespace's recorded inputs into a fresh shadow namespace,
then compare what they derive, event by event, with what the live processors wrote.

Each processor reads the *source* namespace's inputs — the very records the live one read, other processors'
outputs included — and writes to the shadow namespace. Processing is deterministic (event time, derived ids), so
each shadow output must equal the source's: same event ids, and the same Avro body (the bytes after the
Confluent header, whose schema id may differ between namespaces) — compared by SHA-256.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from schemas.registry import SchemaRegistry
from schemas.serde import register_all
from streams import kafka
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka import KafkaSettings, TopicPartition
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.processors import ProcessorSettings
from streams.replay.errors import ReplayError
from streams.replay.reader import TopicReader
from streams.worker import PROCESSORS

# What each verifiable processor writes. The strategy is left out: it writes to `orders`, which holds the clients'
# orders too, so its outputs cannot be told apart from its inputs' by topic.
OUTPUTS = {
    "risk": "orders.checked",
    "execution": "executions",
    "executions-by-account": "executions.by-account",
    "positions": "positions",
    "signals": "signals",
}
_BODY = 5  # Confluent header: magic byte and schema id


@dataclass
class TopicComparison:
    """One output topic, source against shadow."""

    topic: str
    source: int = 0
    shadow: int = 0
    identical: int = 0
    differing: list[str] = field(default_factory=list)  # event ids whose bodies differ
    missing: list[str] = field(default_factory=list)  # in the source, not derived again
    extra: list[str] = field(default_factory=list)  # derived again, not in the source
    # aggregates whose events (those in both) the shadow holds in another order. An aggregate's events are derived by
    # one task in its inputs' merge order, so a log a replay would write otherwise — two swapped, one written twice
    # around another — differs even when every event is identical. (Not a record key's: instances' tasks share keys,
    # e.g. an instrument's in orders.checked, and write them side by side in any order.)
    reordered: list[str] = field(default_factory=list)
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        return not (self.differing or self.missing or self.extra or self.reordered or self.undecodable)


def shadow_run(
    names: Sequence[str],
    settings: KafkaSettings,
    registry: SchemaRegistry,
    source: str,
    shadow: str,
    progress: Callable[[int, int], None],
    timeout_s: float = 3600,
) -> None:
    """Run ``names`` over ``source``'s inputs as they are now, writing to ``shadow``, until all are consumed."""
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise ReplayError(f"cannot verify {', '.join(unknown)}", hint=f"verifiable processors: {', '.join(OUTPUTS)}")
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), shadow)
    register_all(registry, shadow)
    config = HostConfig(instance=f"verify-{uuid.uuid4().hex[:8]}", input_prefix=source, output_prefix=shadow)
    hosts = [ProcessorHost(PROCESSORS[n](ProcessorSettings()), settings, registry, config) for n in names]
    ends = {h: input_ends(settings, registry, source, h.processor.partitioned) for h in hosts}
    total = sum(sum(e.values()) for e in ends.values())
    stop = threading.Event()
    failures: list[BaseException] = []

    def host(h: ProcessorHost) -> None:
        try:
            h.run(stop)
        except BaseException as err:  # reported below, after the other hosts are stopped
            failures.append(err)
            stop.set()

    commits = kafka.FinalCommits(settings)
    threads = [threading.Thread(target=host, args=(h,), name=f"verify-{h.processor.name}") for h in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not stop.is_set():
            done = sum(committed_offsets(commits, h.group, ends[h]) for h in hosts)
            progress(done, total)
            if done >= total:
                break
            if time.monotonic() > deadline:
                raise ReplayError(f"the shadow run did not finish in {timeout_s:.0f}s ({done} of {total} offsets)")
            stop.wait(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        commits.close()
    if failures:
        raise ReplayError(f"a processor failed during the shadow run: {failures[0]}") from failures[0]


def input_ends(
    settings: KafkaSettings, registry: SchemaRegistry, source: str, topics: Sequence[str]
) -> dict[TopicPartition, int]:
    """Where a consumer of ``topics`` that has read every record now in them has committed, per partition."""
    namespace = settings.model_copy(update={"topic_prefix": source})
    found = {}
    for topic in topics:
        with TopicReader(namespace, registry, topic) as reader:
            for p, (low, high) in reader.ranges().items():
                found[TopicPartition(reader.name, p)] = reader.end_of_records(p, low, high)
    return found


def committed_offsets(commits: kafka.FinalCommits, group: str, ends: dict[TopicPartition, int]) -> int:
    """Offsets of ``ends`` the group has committed for good (each partition counted up to its end); an open
    transaction's are not counted, nor waited for (``kafka.FinalCommits``)."""
    committed = commits.of(group, list(ends))
    return sum(min(max(c.offset, 0), ends[TopicPartition(c.topic, c.partition)]) for c in committed)


def compare(settings: KafkaSettings, registry: SchemaRegistry, source: str, shadow: str, topic: str) -> TopicComparison:
    """Every event of ``topic`` in ``source`` against ``shadow``, by event id and SHA-256 of the Avro body, and each
    aggregate's events in their order in the log."""
    result = TopicComparison(topic)
    digests, sequences = [], []
    for prefix in (source, shadow):
        found: dict[str, str] = {}
        by_aggregate: dict[str, list[str]] = defaultdict(list)
        namespace = settings.model_copy(update={"topic_prefix": prefix})
        with TopicReader(namespace, registry, topic) as reader:
            for record in reader.read(reader.ranges()):  # an aggregate's records: one partition's, in order
                if record.event is None:
                    result.undecodable += 1
                    continue
                value = record.value if record.value is not None else b""
                event_id = str(record.event.envelope.event_id)
                found[event_id] = hashlib.sha256(value[_BODY:]).hexdigest()
                by_aggregate[record.event.envelope.aggregate_id].append(event_id)
        digests.append(found)
        sequences.append(by_aggregate)
    original, again = digests
    result.source, result.shadow = len(original), len(again)
    for event_id, digest in original.items():
        if event_id not in again:
            result.missing.append(event_id)
        elif again[event_id] != digest:
            result.differing.append(event_id)
        else:
            result.identical += 1
    result.extra = [event_id for event_id in again if event_id not in original]
    before, after = sequences
    for aggregate, ids in before.items():
        # Only the events both hold: one missing or extra is reported as such, not as the rest reordered.
        if [i for i in ids if i in again] != [i for i in after.get(aggregate, []) if i in original]:
            result.reordered.append(aggregate)
    return result
