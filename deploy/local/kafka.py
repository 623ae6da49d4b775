"""Apache Kafka in KRaft mode as local Java processes: one combined broker+controller per node."""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.local import java
from deploy.local.errors import StackError
from deploy.local.process import ProcessRecord, port_in_use, spawn, tail
from deploy.local.settings import StackSettings
from streams.kafka import broker_count

KAFKA_MIN_JAVA = 17
LOG4J2 = Path(__file__).with_name("log4j2.properties")


@dataclass(frozen=True)
class KafkaNode:
    """One KRaft node of the local cluster: its id, ports and directory."""

    node_id: int
    client_port: int
    controller_port: int
    home: Path

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def log(self) -> Path:
        return self.home / "server.log"


OPEN_FILES = 262_144
# Each node is broker and controller at once. A node's broker asks the controllers' quorum to let it shut down; when
# the whole cluster is stopped, a node that asks after the others' controllers have gone waits for a quorum that
# will not come back, until SIGKILL (30 s of `stack down`, seen after `tests/deploy/test_broker_loss.py`). Alone
# this long, it is killed: its acknowledged records are on disk or in the page cache, and the next start recovers
# its logs. (A node shutting down cleanly is done in 1-3 s.)
LAST_NODE_S = 10.0


def version() -> str:
    return java.pom_property("kafka.version")


def nodes(settings: StackSettings, brokers: int) -> list[KafkaNode]:
    root = settings.stack_dir / "kafka"
    return [
        KafkaNode(
            node_id=n,
            client_port=settings.kafka_port + 100 * (n - 1),
            controller_port=settings.kafka_port + 100 * (n - 1) + 1,
            home=root / f"node-{n}",
        )
        for n in range(1, brokers + 1)
    ]


def bootstrap(cluster: Sequence[KafkaNode]) -> str:
    return ",".join(node.address for node in cluster)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64, unpadded (as `kafka-storage random-uuid` prints).

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: command-line tools would read such an id
    as an option (one id in 64 did, and failed `stack up`).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def formatted_cluster_id(node: KafkaNode) -> str | None:
    """The cluster id a node's storage was formatted with, if it was."""
    meta = node.home / "data" / "meta.properties"
    if not meta.exists():
        return None
    pairs = dict(line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line)
    return pairs.get("cluster.id")


def server_properties(node: KafkaNode, cluster: Sequence[KafkaNode]) -> str:
    replication = min(3, len(cluster))
    min_isr = max(1, replication - 1)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.client_port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.client_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": (node.home / "data").resolve(),
        # Topics are created by the project with explicit settings, never implicitly by a typo.
        "auto.create.topics.enable": "false",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        # The log is the store: nothing expires unless a topic says so.
        "log.retention.ms": -1,
        "group.initial.rebalance.delay.ms": 0,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def libs(settings: StackSettings) -> Path:
    """The broker's jar directory, resolved from Maven Central on first use."""
    cache = settings.stack_dir / "cache"
    target = cache / f"kafka-{version()}" / "libs"
    java.resolve("kafka", cache, target / f"kafka_2.13-{version()}.jar")
    return target


def format_storage(settings: StackSettings, node: KafkaNode, cluster: Sequence[KafkaNode], cluster_id: str) -> None:
    """Write server.properties and format the node's KRaft storage if it has never been formatted."""
    node.home.mkdir(parents=True, exist_ok=True)
    props = node.home / "server.properties"
    props.write_text(server_properties(node, cluster))
    formatted = formatted_cluster_id(node)
    if formatted is not None:
        if formatted != cluster_id:
            raise StackError(
                f"{node.home} holds data of another Kafka cluster",
                hint="a stale .stack/ from another setup: run `tradecore stack down --purge` to start afresh",
            )
        return
    runtime = java.find_java(KAFKA_MIN_JAVA, "Kafka")
    done = subprocess.run(
        [
            str(runtime),
            "-cp",
            f"{libs(settings)}/*",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            f"--config={props}",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise StackError(f"formatting KRaft storage of {node.name} failed:\n{done.stdout}{done.stderr}")


def start(settings: StackSettings, node: KafkaNode) -> ProcessRecord:
    runtime = java.find_java(KAFKA_MIN_JAVA, "Kafka")
    argv = [
        str(runtime),
        f"-Xmx{settings.kafka_heap}",
        # ZGC collects concurrently: G1's young pauses (≈ 15 ms every ≈ 3 s, also with Kafka's own G1 settings) were
        # the tail of every acks=all and transactional round trip. A decision's p99 at 1,000 orders/s: 73 / 101 ms
        # against 86 / 117 with G1, the broker's CPU the same (docs/PERFORMANCE.md, "Stop 40").
        "-XX:+UseZGC",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={node.home.resolve()}",
        f"-Dlog4j2.configurationFile={LOG4J2}",
        "-cp",
        f"{libs(settings)}/*",
        "kafka.Kafka",
        str((node.home / "server.properties").resolve()),
    ]
    # A broker keeps every partition's segment and index files open: thousands of topics (test namespaces, replays)
    # exceed the usual 1,024 or 20,000 descriptors and the broker fails with "Too many open files".
    return spawn(node.name, argv, log=node.home / "stdout.log", open_files=OPEN_FILES)


def brokers_up(address: str, timeout_s: float = 3.0) -> int:
    """How many brokers the cluster behind ``address`` reports; 0 when it does not answer (at once when nothing
    listens at any of its bootstrap addresses)."""
    if not any(_listening(server) for server in address.split(",")):
        return 0
    return broker_count(address, timeout_s)


def _listening(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        return port_in_use(int(port), host or "127.0.0.1")
    except (OSError, ValueError):  # a name that does not resolve, an address without a port
        return False


def wait_ready(cluster: Sequence[KafkaNode], records: Sequence[ProcessRecord], timeout_s: float) -> None:
    """Block until every node is registered in the cluster's metadata, failing fast if one dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node, record in zip(cluster, records, strict=True):
            gone = record.gone()
            if gone is not None:
                raise StackError(
                    f"{node.name} exited during start-up ({gone}); the end of {node.log}:\n{tail(node.log)}",
                    hint="fix what the log says; if it names a stale or corrupt log dir, "
                    "`tradecore stack down --purge` starts afresh",
                )
        if brokers_up(bootstrap(cluster)) == len(cluster):
            return
        time.sleep(0.5)
    raise StackError(
        f"Kafka did not report {len(cluster)} broker(s) within {timeout_s:.0f}s; see {cluster[0].log}",
        hint="raise TRADECORE_STARTUP_TIMEOUT_S on a slow machine",
    )
