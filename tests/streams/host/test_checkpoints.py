"""Restarts from checkpoints: the state a checkpoint and its tail rebuild is the state a full replay rebuilds, byte for
byte, for every processor; a checkpoint that cannot be read means a full replay, logged and counted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import pytest
from prometheus_client import REGISTRY

from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.checkpoints import VERSION
from streams.host.processor import Checkpointed
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.processors import ProcessorSettings
from streams.settings import KafkaSettings
from streams.strategy.follower import FollowedAccount
from streams.worker import PROCESSORS
from tests.support.log import append
from tests.support.market_log import session

pytestmark = pytest.mark.integration

SETTINGS = ProcessorSettings(
    strategy_accounts=[
        FollowedAccount(account_id="ACC-S1", instrument="BTCUSDT", quantity="0.01", indicator="ema_cross")
    ]
)
QUIET_S = 4.0


def hosts(
    topics: KafkaSettings, client: SchemaRegistry, config: HostConfig, settings: ProcessorSettings = SETTINGS
) -> list[ProcessorHost]:
    return [ProcessorHost(make(settings), topics, client, config) for make in PROCESSORS.values()]


def restart_both_ways(
    topics: KafkaSettings, client: SchemaRegistry, tail: list[Event], settings: ProcessorSettings = SETTINGS
) -> tuple[list[ProcessorHost], list[ProcessorHost]]:
    """Append ``tail`` and let every processor take it writing no checkpoint (so all of it is the tail after the last
    one); then every processor restarted from its checkpoints, and again by a full replay, each run until quiet."""
    append(topics, client, tail)
    never = HostConfig(checkpoint_records=10**9, checkpoint_ms=10**9, checkpoint_work_ms=10**9)
    run_until_quiet(hosts(topics, client, never, settings))
    restored = hosts(topics, client, HostConfig(), settings)
    replayed = hosts(topics, client, HostConfig(restore_checkpoints=False), settings)
    run_until_quiet(restored)
    run_until_quiet(replayed)
    return restored, replayed


def run_until_quiet(running: list[ProcessorHost], timeout_s: float = 150) -> None:
    """Host them all until every one is live and none has taken a record for ``QUIET_S``; then stop them."""
    stop = threading.Event()
    threads = [threading.Thread(target=h.run, args=(stop,)) for h in running]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        consumed, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = sum(h.stats.consumed for h in running)
            if now != consumed or not all(h.live.is_set() for h in running):
                consumed, since = now, time.monotonic()
            elif time.monotonic() - since >= QUIET_S:
                return
        raise AssertionError("the processors did not settle in time")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def snapshots(host: ProcessorHost) -> dict[int, bytes]:
    out = {}
    for task in host.tasks:
        assert isinstance(task.processor, Checkpointed)
        out[task.key] = task.processor.snapshot()
    return out


def split(log: list[Event]) -> Iterable[list[Event]]:
    half = len(log) // 2
    return log[:half], log[half:]


def test_a_checkpoint_and_its_tail_rebuild_the_state_a_full_replay_does(
    topics: KafkaSettings, registry_settings: RegistrySettings, caplog: pytest.LogCaptureFixture
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    first, second = split(session(600, accounts=12))

    # Checkpoints every few records while the first half goes through the whole pipeline ...
    append(topics, client, first)
    checkpointing = hosts(topics, client, HostConfig(checkpoint_records=20, checkpoint_ms=200, batch_max=200))
    run_until_quiet(checkpointing)
    written = {h.processor.name: h.stats.checkpoints.get("written", 0) for h in checkpointing}
    # Strategy sees the few signals of the session late, if at all: the other five must have checkpointed.
    assert all(written[name] for name in PROCESSORS if name != "strategy"), written
    # ... then none while the second half does: it is the tail after the last checkpoint.
    restored, replayed = restart_both_ways(topics, client, second)
    for fast, full in zip(restored, replayed, strict=True):
        name = fast.processor.name
        assert fast.stats.consumed == 0 and full.stats.consumed == 0, "nothing was left to take live"
        assert snapshots(fast) == snapshots(full), name
        if written[name]:
            assert fast.stats.checkpoints.get("restored", 0) >= 1, name
            assert fast.stats.replayed < full.stats.replayed, name

    # A checkpoint of a format this code cannot read (a later version's) is ignored: risk replays in full.
    risk = next(h for h in replayed if h.processor.name == "risk")
    partitions = [task.key for task in next(h for h in restored if h.processor.name == "risk").tasks]
    producer = kafka.producer(topics)
    future = f'{{"format":"tradecore.checkpoint","version":{VERSION + 1},"id":"x","chunks":0}}'.encode()
    for partition in partitions:
        producer.produce(
            f"{topics.topic_prefix}risk.checkpoints", key=str(partition).encode(), value=future, partition=partition
        )
    assert producer.flush(30) == 0
    labels = {"processor": "risk", "outcome": "unreadable"}
    before = REGISTRY.get_sample_value("tradecore_checkpoints_total", labels) or 0
    caplog.set_level(logging.WARNING, logger="tradecore.streams")
    again = ProcessorHost(PROCESSORS["risk"](SETTINGS), topics, client, HostConfig())
    run_until_quiet([again])
    assert again.stats.checkpoints.get("unreadable") == len(partitions)
    assert REGISTRY.get_sample_value("tradecore_checkpoints_total", labels) == before + len(partitions)
    assert "ignoring the checkpoint of partition" in caplog.text
    assert again.stats.replayed == risk.stats.replayed
    assert snapshots(again) == snapshots(risk)


def test_a_task_checkpoints_once_its_records_cost_its_share_of_the_work_budget(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    """Neither the record count nor the clock is due: the processing time of the records since the last checkpoint
    (what a restart would redo) is, so a restart replays next to nothing."""
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    append(topics, client, session(600, accounts=12))
    risk = PROCESSORS["risk"]
    by_work = HostConfig(checkpoint_records=10**9, checkpoint_ms=10**9, checkpoint_work_ms=1)
    taking = ProcessorHost(risk(SETTINGS), topics, client, by_work)
    run_until_quiet([taking])
    assert taking.stats.consumed > 0 and taking.stats.checkpoints.get("written", 0) > 0, taking.stats
    restored = ProcessorHost(risk(SETTINGS), topics, client, HostConfig())
    replayed = ProcessorHost(risk(SETTINGS), topics, client, HostConfig(restore_checkpoints=False))
    run_until_quiet([restored])
    run_until_quiet([replayed])
    assert restored.stats.checkpoints.get("restored", 0) == len(restored.tasks.by_key) > 1
    assert restored.stats.replayed < replayed.stats.replayed / 20, (restored.stats.replayed, replayed.stats.replayed)
    assert snapshots(restored) == snapshots(replayed)
