"""`tradecore worker signals` taking its input as frames, SIGKILLed while it works through a stream of real ticks and
started again, has committed every signal exactly once: the `signals` topic, read_committed, holds byte for byte
what the engine derives from the same ticks one by one — no duplicate from the killed transaction, no gap."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from deploy.local.stack import Endpoints
from domain.signals import SignalConfig, SignalEngine
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.kafka import FinalCommits
from streams.kafka.registry import registry_client
from streams.replay.verify import committed_offsets, input_ends
from streams.settings import KafkaSettings
from tests.domain.signals.market import binance_btcusdt, ftx_btcperp, histdata_eurusd
from tests.streams.host.test_frames import written
from tests.support.workers import said, start_worker

pytestmark = pytest.mark.integration


def committed(settings: KafkaSettings, topic: str) -> list[bytes]:
    """Every committed value of ``topic``."""
    return [value or b"" for records in written(settings, topic).values() for _, value, _ in records]


def test_a_framed_signals_worker_killed_mid_stream_commits_every_signal_exactly_once(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    register_all(client, prefix)
    ticks = [*binance_btcusdt().ticks, *histdata_eurusd().ticks, *ftx_btcperp().ticks[:40_000]]
    engine = SignalEngine(SignalConfig())  # the worker's configuration: the defaults
    expected = [signal for tick in ticks for signal in engine.handle(tick)]
    signals = EventSerializer(client, "signals", topic_prefix=prefix)
    wanted = Counter(signals.serialize(s) for s in expected)
    serializer = EventSerializer(client, "ticks", topic_prefix=prefix)
    records = [(serializer.serialize(t), serializer.key(t), event_time_ms(t)) for t in ticks]  # before: fast below
    producer = kafka.producer(topics)

    def produce(part: list[tuple[bytes, bytes, int]]) -> None:
        for i, (value, key, at) in enumerate(part):
            producer.produce(serializer.topic, value, key, timestamp=at)
            if i % 1000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0

    half = len(records) // 2
    produce(records[:half])
    worker = start_worker(endpoints, prefix, ["signals"], tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 120
        while not committed(topics, prefix + "signals"):  # it is live and has committed some
            assert worker.poll() is None and time.monotonic() < deadline, said(tmp_path / "worker.log")
            time.sleep(0.2)
        produce(records[half:])  # ≈ 26,000 ticks: half a second of work or more
        time.sleep(0.15)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        # Asked of the group's commits, not read from `signals`: a read_committed read would wait on the killed
        # worker's open transaction until the next worker fences it, or until it times out (20 s).
        ends = input_ends(topics, client, prefix, ["ticks"])
        with FinalCommits(topics) as commits:
            assert committed_offsets(commits, prefix + "signals", ends) < sum(ends.values()), (
                "the kill came before the worker had finished"
            )
    finally:
        if worker.poll() is None:
            worker.kill()
    worker = start_worker(endpoints, prefix, ["signals"], tmp_path / "worker-again.log")
    try:
        deadline = time.monotonic() + 180
        while len(found := committed(topics, prefix + "signals")) < len(expected):
            assert worker.poll() is None and time.monotonic() < deadline, said(tmp_path / "worker-again.log")
            time.sleep(0.5)
        time.sleep(2)  # (anything more would be a duplicate: give it the time to show)
        found = committed(topics, prefix + "signals")
    finally:
        worker.terminate()
        worker.wait(60)

    assert Counter(found) == wanted
