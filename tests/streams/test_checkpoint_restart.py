"""`tradecore worker risk` restarted after a SIGKILL goes live from its checkpoints, replaying only the tail; and
instances that came and went — two sharing the partitions, each with its own position in the broadcast ticks —
leave a namespace on which a single instance restarts and goes live (issue 11's "never goes live again")."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy import launch
from deploy.local.stack import Endpoints
from schemas.events import CancelRequested, OrderPlaced
from schemas.settings import RegistrySettings
from streams.kafka.logreader import LogReader
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.log import append
from tests.support.market_log import session
from tests.support.workers import said

pytestmark = pytest.mark.integration

REBUILT = re.compile(r"risk: rebuilt state from (\d+) records")
RESTORED = re.compile(
    r"risk: rebuilt state from \d+ records in [\d.]+ s \(\d+ partition\(s\) rebuilt, (\d+) from checkpoints"
)


def start(endpoints: Endpoints, prefix: str, log: Path, instance: str = "0", **settings: str) -> launch.Service:
    env = {
        **endpoints.as_env(),
        "TRADECORE_TOPIC_PREFIX": prefix,
        "TRADECORE_CHECKPOINT_RECORDS": "300",
        "TRADECORE_CHECKPOINT_MS": "600000",
        **settings,
    }
    return launch.start("worker", ["worker", "risk", "--instance", instance], log, env)


def decisions(settings: KafkaSettings) -> int:
    """How many records ``orders.checked`` holds, read_committed."""
    reader = LogReader(settings, "test-decisions")
    try:
        positions = reader.partitions([settings.topic_prefix + "orders.checked"])
        stops = reader.ends(positions)
        reader.assign(dict.fromkeys(positions, 0))
        return sum(len(batch) for batch in reader.read(stops, max_records=5000))
    finally:
        reader.close()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, *workers: launch.Service) -> None:
    """Wait for ``condition`` while ``workers`` run; a failed wait shows what each of them said last."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        for worker in workers:
            assert worker.running(), f"{what}: the worker exited {worker.process.returncode}\n{said(worker.log)}"
        assert time.monotonic() < deadline, "\n".join([what, *(f"--- {w.log.name}\n{said(w.log)}" for w in workers)])
        time.sleep(1.0)


def rebuilds(log: Path) -> list[int]:
    return [int(n) for n in REBUILT.findall(log.read_text())]


def test_a_killed_worker_goes_live_replaying_only_the_tail(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    events = session(3000, accounts=24)
    decided = [isinstance(e, (OrderPlaced, CancelRequested)) for e in events]
    # The last tenth comes once the rest is decided: fewer records per partition than a checkpoint waits for, so
    # it is the tail after the last checkpoint.
    tail = len(events) * 9 // 10
    append(topics, client, events[:tail])
    log = tmp_path / "worker.log"
    worker = start(endpoints, topics.topic_prefix, log)
    try:
        wait_for(lambda: decisions(topics) >= sum(decided[:tail]), 150, "risk did not decide the orders", worker)
        append(topics, client, events[tail:])
        expected = sum(decided)
        wait_for(lambda: decisions(topics) >= expected, 60, "risk did not decide the last orders", worker)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()
        worker = start(endpoints, topics.topic_prefix, log)
        wait_for(lambda: len(rebuilds(log)) >= 2, 90, "the restarted worker did not go live", worker)
    finally:
        worker.stop()
    first, second = rebuilds(log)[:2]
    assert first == 0  # nothing committed before the first start
    # Every partition comes back from its checkpoint, and only the tail after it is replayed (how long a tail depends
    # on where the last checkpoint fell); a full replay would fold every order and cancel, and every tick once per
    # partition.
    assert [int(n) for n in RESTORED.findall(log.read_text())][1] == 6
    assert second < len(events) / 5, second
    assert "ignoring the checkpoint" not in log.read_text()
    assert decisions(topics) == expected  # and nothing twice


def test_a_worker_whose_input_went_quiet_checkpoints_it_and_restarts_replaying_nothing(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    events = session(1500, accounts=24)
    decided = [isinstance(e, (OrderPlaced, CancelRequested)) for e in events]
    log = tmp_path / "worker.log"
    # Checkpoints by time alone (3 s), none by count: what the worker took last stays the tail until one is written.
    worker = start(
        endpoints, topics.topic_prefix, log, TRADECORE_CHECKPOINT_RECORDS="1000000", TRADECORE_CHECKPOINT_MS="3000"
    )
    try:
        half = len(events) // 2
        append(topics, client, events[:half])
        wait_for(lambda: decisions(topics) >= sum(decided[:half]), 150, "risk did not decide the orders", worker)
        append(topics, client, events[half:])  # taken within 3 s of any checkpoint the first half got
        wait_for(lambda: decisions(topics) >= sum(decided), 60, "risk did not decide the last orders", worker)
        time.sleep(3 + 4)  # quiet for longer than the checkpoint interval
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()
        worker = start(endpoints, topics.topic_prefix, log)
        wait_for(lambda: len(rebuilds(log)) >= 2, 90, "the restarted worker did not go live", worker)
    finally:
        worker.stop()
    assert rebuilds(log)[1] == 0  # every partition from its checkpoint, no tail
    assert [int(n) for n in RESTORED.findall(log.read_text())][1] == 6
    assert decisions(topics) == sum(decided)


def test_a_single_instance_goes_live_after_two_shared_the_partitions(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    events = session(2000, accounts=24)
    half = len(events) // 2
    expected = sum(isinstance(e, (OrderPlaced, CancelRequested)) for e in events)
    append(topics, client, events[:half])
    prefix = topics.topic_prefix
    logs = [tmp_path / f"worker-{i}.log" for i in "01"]
    pair = [start(endpoints, prefix, log, str(i)) for i, log in enumerate(logs)]
    try:
        # Both take ticks and orders while the second half comes in: both write their tasks' journals and checkpoints.
        wait_for(lambda: all(rebuilds(log) for log in logs), 90, "the pair did not go live", *pair)
        append(topics, client, events[half:])
        wait_for(lambda: decisions(topics) >= expected, 150, "the pair did not decide every order", *pair)
    finally:
        for worker in pair:
            worker.stop()
    single_log = tmp_path / "single.log"
    single = start(endpoints, prefix, single_log)
    try:
        wait_for(lambda: bool(rebuilds(single_log)), 90, "a single instance did not go live", single)
        more = session(2200, accounts=24, seed=12)
        extra = [e for e in more if isinstance(e, OrderPlaced)][-5:]
        append(topics, client, extra)
        wait_for(lambda: decisions(topics) >= expected + len(extra), 60, "the single instance does not decide", single)
    finally:
        single.stop()
    assert "starting over" not in single_log.read_text()
    assert decisions(topics) == expected + len(extra)
