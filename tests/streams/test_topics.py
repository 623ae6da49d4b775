"""`tradecore topics ensure`: the design's topics with the configuration asked for, idempotently."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from streams import kafka
from streams.errors import TopicConfigError
from streams.processors import ProcessorSettings
from streams.settings import KafkaSettings
from streams.topics import TOPICS, TopicLayout, ensure_topics
from streams.worker import PROCESSORS

ONE_BROKER = TopicLayout.for_cluster(1, 6)


def topic_config(client: AdminClient, topic: str) -> dict[str, str]:
    future = next(iter(client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()))
    return {key: entry.value for key, entry in future.result().items()}


def await_config(client: AdminClient, topic: str, key: str, value: str) -> None:
    """Config changes reach the broker through the KRaft metadata log: allow them a moment."""
    deadline = time.monotonic() + 10
    while (current := topic_config(client, topic)[key]) != value:
        assert time.monotonic() < deadline, f"{topic} {key} is {current}, expected {value}"
        time.sleep(0.1)


def test_layout_fits_the_cluster_size() -> None:
    assert TopicLayout.for_cluster(1, 6) == TopicLayout(6, 1, 1)
    assert TopicLayout.for_cluster(3, 12) == TopicLayout(12, 3, 2)
    assert TopicLayout.for_cluster(5, 6) == TopicLayout(6, 3, 2)


@pytest.mark.integration
def test_every_design_topic_is_created_with_partitions_retention_and_min_isr(
    kafka_settings: KafkaSettings,
) -> None:
    client = kafka.admin(kafka_settings)
    outcomes = ensure_topics(client, ONE_BROKER, kafka_settings.topic_prefix)
    names = [kafka_settings.topic_prefix + spec.name for spec in TOPICS]
    assert sorted((o.topic, o.action) for o in outcomes) == sorted((n, "created") for n in names)

    metadata = client.list_topics(timeout=10)
    for name in names:
        assert len(metadata.topics[name].partitions) == 6
        config = topic_config(client, name)
        assert config["retention.ms"] == "-1"
        assert config["retention.bytes"] == "-1"
        assert config["min.insync.replicas"] == "1"


@pytest.mark.integration
def test_ensuring_twice_changes_nothing(kafka_settings: KafkaSettings) -> None:
    client = kafka.admin(kafka_settings)
    ensure_topics(client, ONE_BROKER, kafka_settings.topic_prefix)
    again = ensure_topics(client, ONE_BROKER, kafka_settings.topic_prefix)
    assert {o.action for o in again} == {"unchanged"}
    assert len(again) == len(TOPICS)


@pytest.mark.integration
def test_config_drift_is_mended_and_reported(kafka_settings: KafkaSettings) -> None:
    client = kafka.admin(kafka_settings)
    ensure_topics(client, ONE_BROKER, kafka_settings.topic_prefix)
    ticks = kafka_settings.topic_prefix + "ticks"
    shrink = ConfigResource(
        ConfigResource.Type.TOPIC,
        ticks,
        incremental_configs=[ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)],
    )
    for future in client.incremental_alter_configs([shrink]).values():
        future.result()
    await_config(client, ticks, "retention.ms", "60000")

    outcomes = {o.topic: o for o in ensure_topics(client, ONE_BROKER, kafka_settings.topic_prefix)}
    assert outcomes[ticks].action == "updated"
    assert "retention.ms 60000 -> -1" in outcomes[ticks].detail
    await_config(client, ticks, "retention.ms", "-1")


@pytest.mark.integration
def test_a_topic_with_other_partitions_is_refused_not_repartitioned(kafka_settings: KafkaSettings) -> None:
    client = kafka.admin(kafka_settings)
    orders = kafka_settings.topic_prefix + "orders"
    for future in client.create_topics([NewTopic(orders, 2, 1)]).values():
        future.result()
    with pytest.raises(TopicConfigError, match=f"topic {orders} has 2 partitions"):
        ensure_topics(client, ONE_BROKER, kafka_settings.topic_prefix)
    assert len(client.list_topics(timeout=10).topics[orders].partitions) == 2


@pytest.mark.integration
def test_the_cli_creates_the_topics_in_the_namespace_given(kafka_settings: KafkaSettings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers}
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    out = subprocess.run(
        [tradecore, "topics", "ensure", "--prefix", kafka_settings.topic_prefix],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("created") == len(TOPICS)
    assert "RF 1, min.insync.replicas 1, retention.ms -1" in out.stdout
    topics = kafka.admin(kafka_settings).list_topics(timeout=10).topics
    assert all(kafka_settings.topic_prefix + spec.name in topics for spec in TOPICS)


def test_the_cli_says_what_to_do_when_kafka_is_not_there() -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    out = subprocess.run([tradecore, "topics", "ensure"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "tradecore stack up" in out.stderr


def test_every_processor_that_interleaves_inputs_has_a_journal_topic() -> None:
    names = {spec.name for spec in TOPICS}
    for name, build in PROCESSORS.items():
        processor = build(ProcessorSettings())
        inputs = processor.partitioned + processor.broadcast
        assert (f"{processor.name}.journal" in names) == (len(inputs) > 1), name
