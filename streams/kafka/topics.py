"""The topics of the design, and `tradecore topics ensure`: create them, or check and mend them, idempotently."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streams.errors import StreamsError, TopicConfigError


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the design: its name (before any prefix), what its records are keyed by, what it holds."""

    name: str
    key: str
    holds: str
    internal: bool = False  # written and read by processors only (e.g. a repartition), no event types of its own
    compacted: bool = False  # only the latest record of each key matters (a processor's checkpoints)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("orders", "account", "OrderPlaced, CancelRequested, AmendRequested, RiskLimitsSet, KillSwitchToggled"),
    TopicSpec(
        "orders.checked",
        "instrument",
        "OrderAccepted, OrderRejected, CancelAccepted, AmendAccepted, AmendRejected",
    ),
    TopicSpec(
        "executions",
        "instrument",
        "OrderFilled, OrderCancelled, CancelRejected, OrderExpired, OrderAmended, OrderAmendRejected",
    ),
    TopicSpec("ticks", "instrument", "TickIngested"),
    TopicSpec("signals", "instrument", "SignalGenerated"),
    TopicSpec("positions", "account", "PositionChanged"),
    # Internal: the executions re-keyed by account (raw bytes, unchanged), so that per-account processors
    # (positions, risk) own every execution of their accounts.
    TopicSpec("executions.by-account", "account", "the records of executions, re-keyed by account", internal=True),
    # Internal: the order in which each multi-input processor took its records, one record per transaction
    # (streams.host.runner), so a rebuild after a crash folds them in that order.
    TopicSpec(
        "risk.journal",
        "none (partition 0)",
        "risk's processing order: runs of (topic, partition, count)",
        internal=True,
    ),
    TopicSpec(
        "execution.journal",
        "none (partition 0)",
        "execution's processing order: runs of (topic, partition, count)",
        internal=True,
    ),
    TopicSpec("deadletter", "source topic", "records that could not be decoded or processed, with the reason"),
    # Internal, compacted: each processor's latest state per input partition (streams.host.checkpoints), written in
    # the transaction it covers; a restart loads it and replays only the tail after it.
    *(
        TopicSpec(
            f"{name}.checkpoints",
            "input partition (manifest), partition/chunk (chunks)",
            f"{name}'s state per input partition and the offsets it covers",
            internal=True,
            compacted=True,
        )
        for name in ("risk", "execution", "executions-by-account", "positions", "signals", "strategy")
    ),
)


@dataclass(frozen=True)
class TopicLayout:
    """Partitions, replication and durability every topic gets on a cluster of a given size."""

    partitions: int
    replication_factor: int
    min_insync_replicas: int

    @classmethod
    def for_cluster(cls, brokers: int, partitions: int) -> TopicLayout:
        """RF 3 / min ISR 2 on three or more brokers (one may fail without losing a write); RF 1 on one."""
        replication = min(3, brokers)
        return cls(partitions, replication, max(1, replication - 1))

    def config(self, spec: TopicSpec | None = None) -> dict[str, str]:
        """What every topic gets, and (given its spec) what this one gets besides."""
        # Checkpoints: only each key's latest counts. Segments roll every 10 minutes so that the cleaner can drop
        # superseded checkpoints (it never touches the active segment); loading reads back from the end anyway.
        compacted = (
            {"cleanup.policy": "compact", "segment.ms": "600000", "min.cleanable.dirty.ratio": "0.1"}
            if spec is not None and spec.compacted
            else {}
        )
        return self._base() | compacted

    def _base(self) -> dict[str, str]:
        # The log is the system of record: never delete by age or size.
        return {
            "retention.ms": "-1",
            "retention.bytes": "-1",
            "min.insync.replicas": str(self.min_insync_replicas),
            # Record timestamps are event time, set by our producers: processors interleave several inputs by
            # them (streams.host.merge), so a replay of recorded data orders orders and ticks as they happened.
            "message.timestamp.type": "CreateTime",
        }


@dataclass(frozen=True)
class TopicOutcome:
    topic: str
    action: str  # created | unchanged | updated
    detail: str = ""


def ensure_topics(
    client: AdminClient,
    layout: TopicLayout,
    prefix: str = "",
    specs: Iterable[TopicSpec] = TOPICS,
    timeout_s: float = 30,
) -> list[TopicOutcome]:
    """Create missing topics; bring the config of existing ones in line; refuse partition or RF changes."""
    wanted = {prefix + spec.name: spec for spec in specs}
    metadata = client.list_topics(timeout=timeout_s)
    outcomes: list[TopicOutcome] = []

    missing = [name for name in wanted if name not in metadata.topics]
    raced: list[str] = []
    if missing:
        futures = client.create_topics(
            [
                NewTopic(name, layout.partitions, layout.replication_factor, config=layout.config(wanted[name]))
                for name in missing
            ],
            operation_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
                outcomes.append(
                    TopicOutcome(name, "created", f"{layout.partitions} partitions, RF {layout.replication_factor}")
                )
            except Exception as err:
                if "TOPIC_ALREADY_EXISTS" not in str(err):
                    raise
                raced.append(name)  # created by someone else since we looked: checked below like the others

        metadata = led(client, missing, timeout_s)

    existing = [name for name in wanted if name in metadata.topics and (name not in missing or name in raced)]
    for name in existing:
        partitions = metadata.topics[name].partitions
        rf = len(next(iter(partitions.values())).replicas)
        if len(partitions) != layout.partitions or rf != layout.replication_factor:
            # More partitions would move keys to other partitions and break single-writer-per-key state.
            raise TopicConfigError(
                f"topic {name} has {len(partitions)} partitions with RF {rf}; "
                f"the layout asks for {layout.partitions} with RF {layout.replication_factor}",
                hint="set TRADECORE_PARTITIONS to match, or recreate the topic in a new namespace "
                "(TRADECORE_TOPIC_PREFIX) and replay into it",
            )
    outcomes.extend(_align_configs(client, {name: layout.config(wanted[name]) for name in existing}, timeout_s))
    return sorted(outcomes, key=lambda o: o.topic)


def led(client: AdminClient, names: Iterable[str], timeout_s: float = 30) -> ClusterMetadata:
    """The cluster's metadata once a listing names every one of ``names`` with a leader for each partition: a
    created topic is one a producer can use now. Each broker applies the controller's metadata log at its own pace
    and any of them may answer a listing, so a later listing may still miss a topic this one named."""
    names = list(names)
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = client.list_topics(timeout=timeout_s)
        topics = metadata.topics
        pending = [
            n
            for n in names
            if n not in topics
            or topics[n].error is not None
            or any(p.leader < 0 for p in topics[n].partitions.values())
        ]
        if not pending:
            return metadata
        if time.monotonic() > deadline:
            raise StreamsError(f"topics created but without a leader after {timeout_s:.0f}s: {', '.join(pending)}")
        time.sleep(0.1)


def _align_configs(client: AdminClient, configs: dict[str, dict[str, str]], timeout_s: float) -> list[TopicOutcome]:
    if not configs:
        return []
    described = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in configs])
    outcomes = []
    for resource, future in described.items():
        wanted = configs[resource.name]
        current = {key: entry.value for key, entry in future.result().items()}
        drift = {key: value for key, value in wanted.items() if current.get(key) != value}
        if not drift:
            outcomes.append(TopicOutcome(resource.name, "unchanged"))
            continue
        change = ConfigResource(
            ConfigResource.Type.TOPIC,
            resource.name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in drift.items()
            ],
        )
        for altered in client.incremental_alter_configs([change], request_timeout=timeout_s).values():
            altered.result()
        detail = ", ".join(f"{key} {current.get(key)} -> {value}" for key, value in drift.items())
        outcomes.append(TopicOutcome(resource.name, "updated", detail))
    return outcomes


def cluster_size(client: AdminClient, timeout_s: float = 10) -> int:
    return len(client.list_topics(timeout=timeout_s).brokers)


def namespace_topics(client: AdminClient, prefix: str, timeout_s: float = 60) -> list[str]:
    """The topics of the namespace ``prefix``, refusing a prefix that names more than namespaces: the empty one (every
    topic), or one that matches a topic outside any namespace (the default namespace's, Kafka's own ``__…``)."""
    if not prefix:
        raise TopicConfigError("refusing the empty namespace: it names every topic of the cluster")
    names = sorted(name for name in client.list_topics(timeout=timeout_s).topics if name.startswith(prefix))
    bare = {spec.name for spec in TOPICS}
    outside = [name for name in names if name in bare or name.startswith("_")]
    if outside:
        raise TopicConfigError(
            f"the prefix {prefix!r} matches topics outside any namespace: {', '.join(outside[:5])}",
            hint="give a whole namespace, as TRADECORE_TOPIC_PREFIX names it (e.g. demo-20261203101500.)",
        )
    return names


def delete_namespace(client: AdminClient, prefix: str, timeout_s: float = 60) -> list[str]:
    """Delete every topic of the namespace ``prefix`` (a test's, a backtest's or a replay's); refuses what
    ``namespace_topics`` refuses.

    A broker keeps files open for every partition it hosts: namespaces left behind by the thousand exhaust its file
    descriptors."""
    doomed = namespace_topics(client, prefix, timeout_s)
    if not doomed:
        return []
    for name, future in client.delete_topics(doomed, operation_timeout=timeout_s).items():
        try:
            future.result()
        except Exception as err:
            if "UNKNOWN_TOPIC_OR_PART" not in str(err):
                raise StreamsError(f"could not delete topic {name}: {err}") from err
    return doomed
