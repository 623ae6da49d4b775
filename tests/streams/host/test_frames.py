"""A host taking each fetched run of a partition as one frame (the signals processor, ``streams.host.frames``)
writes exactly what it writes taking the same records one by one: the same signals, byte for byte and in the same
order per partition, and the same dead letters with the same reasons — for values that do not decode and for an
event id that is no uuid — while a uuid in an odd but valid form goes through."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from schemas.events import Event
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka import tracing
from streams.kafka.logreader import LogReader
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.processors import ProcessorSettings, SignalsProcessor
from streams.settings import KafkaSettings
from tests.domain.signals.market import binance_btcusdt, histdata_eurusd

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts as a worker without tracing runs them: frames are taken only then (spans are per record). A test that
    traced earlier in this process installed its one tracer provider, which none can take back."""
    monkeypatch.setattr(tracing, "recording", lambda: False)


Written = dict[int, list[tuple[bytes | None, bytes | None, dict[str, bytes]]]]


def odd_but_valid(value: bytes, event: Event) -> bytes:
    """``value`` with its event id written ``{{…}}`` around the bare hex: the same length, and ``UUID`` takes it."""
    canonical = str(event.envelope.event_id).encode()
    return value.replace(canonical, b"{{" + event.envelope.event_id.hex.encode() + b"}}")


def not_a_uuid(value: bytes, event: Event) -> bytes:
    canonical = str(event.envelope.event_id).encode()
    return value.replace(canonical, b"z" * len(canonical))


def written(settings: KafkaSettings, topic: str) -> Written:
    """Every committed record of ``topic``, per partition in offset order."""
    reader = LogReader(settings, f"test-frames-{uuid.uuid4().hex[:8]}")
    try:
        positions = reader.partitions([topic])
        stops = reader.ends(positions)
        reader.assign(dict.fromkeys(positions, 0))
        found: Written = {partition: [] for _, partition in positions}
        for batch in reader.read(stops, max_records=5000):
            for record in batch:
                found[record.partition].append((record.key, record.value, dict(record.headers or [])))
        return found
    finally:
        reader.close()


def run_host(
    settings: KafkaSettings, client: Any, output: str, total: int, frames: bool, restore: bool = True
) -> ProcessorHost:
    """A signals host over the namespace's ticks until it has consumed ``total`` of them live (``total`` 0: until its
    rebuild is done and it is live)."""
    host = ProcessorHost(
        SignalsProcessor(ProcessorSettings()),
        settings,
        client,
        HostConfig(input_prefix=settings.topic_prefix, output_prefix=output, batch_ms=50, restore_checkpoints=restore),
    )
    if not frames:
        host.frames = None
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and thread.is_alive():
            if host.stats.consumed >= total and host.live.is_set():
                break
            time.sleep(0.05)
        assert host.stats.consumed == total and host.live.is_set()
    finally:
        stop.set()
        thread.join(60)
    return host


def states(host: ProcessorHost) -> dict[int, bytes]:
    """Each partition's signal-engine state, as its checkpoint would hold it."""
    return {key: task.processor.snapshot() for key, task in host.tasks.by_key.items()}  # type: ignore[attr-defined]


def test_runs_taken_as_frames_write_what_records_taken_one_by_one_write(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    admin = kafka.admin(topics)
    layout = TopicLayout.for_cluster(cluster_size(admin), topics.partitions)
    outputs = {"framed": prefix + "framed.", "single": prefix + "single."}
    for namespace in (prefix, *outputs.values()):
        ensure_topics(admin, layout, namespace)
        register_all(client, namespace)
    serializer = EventSerializer(client, "ticks", topic_prefix=prefix)
    producer = kafka.producer(topics)
    ticks = [*binance_btcusdt().ticks, *histdata_eurusd().ticks[:3_000]]
    for i, tick in enumerate(ticks):
        value = serializer.serialize(tick)
        if i % 997 == 5:
            value = not_a_uuid(value, tick)
        elif i % 997 == 9:
            value = odd_but_valid(value, tick)
        elif i % 997 == 11:
            value = value[:-3]  # truncated
        producer.produce(serializer.topic, value, serializer.key(tick), timestamp=event_time_ms(tick))
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0

    hosts = {kind: run_host(topics, client, output, len(ticks), kind == "framed") for kind, output in outputs.items()}

    assert hosts["framed"].stats.framed > len(ticks) // 2, "most records were taken as frames"
    assert hosts["single"].stats.framed == 0
    signals = {kind: written(topics, output + "signals") for kind, output in outputs.items()}
    assert sum(len(records) for records in signals["single"].values()) > 100
    assert signals["framed"] == signals["single"]
    dead = {kind: written(topics, output + "deadletter") for kind, output in outputs.items()}
    assert dead["framed"] == dead["single"]
    reasons = [headers["tradecore.reason"].decode() for records in dead["framed"].values() for _, _, headers in records]
    poisoned = len([i for i in range(len(ticks)) if i % 997 in (5, 11)])
    assert len(reasons) == poisoned, reasons
    assert all(reason.startswith("undecodable: ") for reason in reasons), reasons
    assert any("badly formed hexadecimal UUID string" in reason for reason in reasons), reasons
    assert states(hosts["framed"]) == states(hosts["single"])

    # A restart that replays everything (no checkpoint read) folds the runs as frames into the same state.
    rebuilt = run_host(topics, client, outputs["framed"], 0, frames=True, restore=False)
    assert rebuilt.stats.replayed == len(ticks)
    assert rebuilt.stats.framed > len(ticks) // 2
    assert states(rebuilt) == states(hosts["single"])
