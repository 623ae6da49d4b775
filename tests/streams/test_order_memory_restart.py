"""The order memory across restarts, on the real stack: risk and the venue forget finished orders as the log goes on,
a checkpoint and its tail forget exactly what a full replay forgets, and a risk checkpoint of the format before the
order memory is ignored in favour of a full replay."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host import checkpoints
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.processors import ProcessorSettings
from streams.settings import KafkaSettings
from streams.worker import PROCESSORS
from tests.streams.host.test_checkpoints import hosts, restart_both_ways, run_until_quiet, snapshots, split
from tests.support.log import append
from tests.support.market_log import session

pytestmark = pytest.mark.integration

# The session spans 46 s of event time: a memory of 5 s makes both processors forget most of it as it goes.
SETTINGS = ProcessorSettings(order_memory=timedelta(seconds=5))


def test_what_is_forgotten_is_the_same_from_a_checkpoint_as_by_a_full_replay(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    log = session(600, accounts=12)
    first, second = split(log)
    append(topics, client, first)
    run_until_quiet(
        hosts(topics, client, HostConfig(checkpoint_records=20, checkpoint_ms=200, batch_max=200), SETTINGS)
    )
    restored, replayed = restart_both_ways(topics, client, second, SETTINGS)
    for fast, full in zip(restored, replayed, strict=True):
        assert snapshots(fast) == snapshots(full), fast.processor.name

    risk = next(h for h in replayed if h.processor.name == "risk")
    states = [json.loads(state) for state in snapshots(risk).values()]
    remembered = sum(len(a["client_order_ids"]) for s in states for a in s["accounts"].values())
    placed = sum(1 for e in log if type(e).__name__ == "OrderPlaced")
    assert 0 < remembered < placed / 2, (remembered, placed)
    execution = next(h for h in replayed if h.processor.name == "execution")
    done = sum(len(v["done"]) for s in snapshots(execution).values() for v in json.loads(s)["venues"].values())
    assert 0 < done < placed / 2, (done, placed)

    # Each risk partition's latest checkpoint, written again as format 1 wrote it: refused, so a full replay.
    fast_risk = next(h for h in restored if h.processor.name == "risk")
    producer = kafka.producer(topics)
    topic = f"{topics.topic_prefix}risk.checkpoints"
    partitions = [task.key for task in fast_risk.tasks]
    for partition in partitions:
        latest = checkpoints.load(topics, "order-memory-test", topic, partition)
        assert isinstance(latest, checkpoints.Checkpoint)
        older = latest.state.replace(b'"format":"tradecore.risk/2"', b'"format":"tradecore.risk/1"')
        for key, value, headers in checkpoints.records(replace(latest, state=older)):
            producer.produce(topic, key=key, value=value, headers=headers, partition=partition)
    assert producer.flush(30) == 0
    again = ProcessorHost(PROCESSORS["risk"](SETTINGS), topics, client, HostConfig())
    run_until_quiet([again])
    assert again.stats.checkpoints.get("unreadable") == len(partitions)
    assert again.stats.replayed == risk.stats.replayed
    assert snapshots(again) == snapshots(risk)
