"""`tradecore stack up | status | down` on a three-node KRaft cluster of its own, in a scratch directory,
so the stack the rest of the suite uses is never touched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from confluent_kafka.admin import ConfigResource

from deploy.local import kafka
from deploy.local.settings import StackSettings
from deploy.local.stack import Endpoints, LocalStack
from streams import kafka as kafka_clients
from streams.kafka.topics import TOPICS, TopicLayout, cluster_size, ensure_topics, led
from streams.settings import KafkaSettings
from tests.support.ports import free_port_block
from tests.support.scratch import server_dir

pytestmark = pytest.mark.integration


def processes_under(directory: Path) -> list[psutil.Process]:
    """Every process whose command line names ``directory``: what `down` must leave none of."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(directory) in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def scratch() -> Iterator[LocalStack]:
    base = free_port_block((0, 1, 100, 101, 200, 201, 300, 301))
    with server_dir("stack-") as directory:
        settings = StackSettings(
            stack_dir=directory / ".stack",
            kafka_port=base,
            registry_port=base + 300,
            registry_management_port=base + 301,
        )
        stack = LocalStack(settings, environ={})
        yield stack
        stack.down(report=lambda _: None)


@pytest.fixture(scope="module")
def first_up(scratch: LocalStack) -> Endpoints:
    return scratch.up(brokers=3, report=lambda _: None)


def test_up_starts_three_brokers_postgres_and_the_registry(scratch: LocalStack, first_up: Endpoints) -> None:
    assert kafka.brokers_up(first_up.kafka_bootstrap) == 3
    assert [row.state for row in scratch.status()] == ["running"] * 5
    env = scratch.env_file.read_text()
    assert f"KAFKA_BOOTSTRAP_SERVERS={first_up.kafka_bootstrap}\n" in env
    assert f"SCHEMA_REGISTRY_URL={first_up.schema_registry_url}\n" in env
    assert f"DATABASE_URL={first_up.database_url}\n" in env


def test_topics_on_three_brokers_are_replicated_three_times_with_min_isr_two(first_up: Endpoints) -> None:
    settings = KafkaSettings(bootstrap_servers=first_up.kafka_bootstrap)
    client = kafka_clients.admin(settings)
    layout = TopicLayout.for_cluster(cluster_size(client), settings.partitions)
    ensure_topics(client, layout)
    metadata = led(client, [spec.name for spec in TOPICS])  # the listing ensure_topics waited for may not be the next
    for spec in TOPICS:
        partitions = metadata.topics[spec.name].partitions
        assert len(partitions) == 6
        assert all(len(p.replicas) == 3 for p in partitions.values())
    configs = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "orders")])
    entries = next(iter(configs.values())).result()
    assert entries["min.insync.replicas"].value == "2"
    assert entries["retention.ms"].value == "-1"


def test_a_second_up_changes_nothing(scratch: LocalStack, first_up: Endpoints) -> None:
    pids = {row.name: row.pid for row in scratch.status()}
    again = scratch.up(brokers=3, report=lambda _: None)
    assert again == first_up
    assert {row.name: row.pid for row in scratch.status()} == pids


def test_up_with_another_cluster_size_is_refused_with_a_way_out(scratch: LocalStack, first_up: Endpoints) -> None:
    with pytest.raises(Exception, match="created with 3 broker") as refused:
        scratch.up(brokers=1, report=lambda _: None)
    assert "--purge" in str(refused.value)


def test_status_command_reports_each_component(scratch: LocalStack, first_up: Endpoints) -> None:
    env = {
        "TRADECORE_STACK_DIR": str(scratch.dir),
        "TRADECORE_KAFKA_PORT": str(scratch.settings.kafka_port),
        "TRADECORE_REGISTRY_PORT": str(scratch.settings.registry_port),
        "PATH": str(Path(sys.executable).parent),
    }
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    out = subprocess.run([tradecore, "stack", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("postgres", "kafka-1", "kafka-2", "kafka-3", "registry"):
        assert name in out.stdout


def test_a_shell_that_sourced_the_stacks_env_still_sees_its_processes(scratch: LocalStack, first_up: Endpoints) -> None:
    """The README offers `set -a; . .stack/env`: the variables then name the stack's own endpoints, which are not an
    external server to wait for — `status` and `up` report its processes, as without them."""
    sourced = LocalStack(scratch.settings, environ=first_up.as_env())
    rows = sourced.status()
    assert [row.state for row in rows] == ["running"] * 5
    assert [row.pid for row in rows] == [row.pid for row in scratch.status()]
    said: list[str] = []
    assert sourced.up(brokers=3, report=said.append) == first_up
    assert not [line for line in said if "external" in line]
    elsewhere = LocalStack(scratch.settings, environ={**first_up.as_env(), "KAFKA_BOOTSTRAP_SERVERS": "10.9.9.9:1"})
    assert elsewhere.external == {"KAFKA_BOOTSTRAP_SERVERS": "10.9.9.9:1"}  # another server is still somebody else's


def test_down_stops_everything_it_started_and_up_brings_the_data_back(scratch: LocalStack, first_up: Endpoints) -> None:
    stopped = scratch.down(report=lambda _: None)
    assert sorted(stopped) == ["kafka-1", "kafka-2", "kafka-3", "postgres", "registry"]
    assert processes_under(scratch.dir) == []
    assert [row.state for row in scratch.status()] == ["stopped"] * 5
    assert not scratch.env_file.exists()

    again = scratch.up(brokers=3, report=lambda _: None)
    topics = kafka_clients.admin(KafkaSettings(bootstrap_servers=again.kafka_bootstrap)).list_topics(timeout=10).topics
    assert {spec.name for spec in TOPICS} <= set(topics)
