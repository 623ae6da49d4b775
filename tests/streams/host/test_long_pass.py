"""A pass that takes long — costly records fetched at once, a slow model's scoring of a run of bars taken as a frame —
is committed as it goes, once its batch has been open a second: its first outputs are visible while it still works
through the rest, and no transaction stays open much past that (the broker aborts one left open past its timeout). A
batch used to be committed by time only between passes, and a run taken as one frame, so one pass over a fetched
backlog was one transaction, however long it took."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import polars as pl
import pytest
from confluent_kafka import TopicPartition

from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import Forward, Output
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka import tracing
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_prompt import Checker, hosting, until_live
from tests.support.events import envelope, order_placed, tick_ingested
from tests.support.log import append

pytestmark = pytest.mark.integration

ORDERS = 60
COST_S = 0.05  # each order's handling: the pass over all of them takes 3 s
TICKS = 150
ROW_S = 0.03  # each tick's, taken as a frame: 4.5 s for the run


def appended_and_read(
    topics: KafkaSettings, client: SchemaRegistry, events: Sequence[Event], out: str
) -> dict[str, float]:
    """``events`` appended at once; then ``out`` read ``read_committed`` until a record keyed by each one's aggregate
    has come (none twice): when each became visible."""
    reader = kafka.consumer(topics, f"{topics.topic_prefix}long-pass-reader")
    try:
        name = topics.topic_prefix + out
        reader.assign(
            [TopicPartition(name, p, 0) for p in reader.list_topics(name, timeout=30).topics[name].partitions]
        )
        append(topics, client, events)
        visible: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while len(visible) < len(events) and time.monotonic() < deadline:
            for message in reader.consume(100, 0.02):
                if message.error() is None:
                    key = message.key().decode()
                    assert key not in visible, f"{key} written twice"
                    visible[key] = time.monotonic()
        return visible
    finally:
        reader.close()


class SlowChecker(Checker):
    """A ``Checker`` that takes ``COST_S`` over each order and notes when it has handled it."""

    def __init__(self) -> None:
        super().__init__()
        self.handled_at: dict[str, float] = {}

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        if topic == "orders":
            time.sleep(COST_S)
            self.handled_at[event.envelope.aggregate_id] = time.monotonic()
        return super().handle(topic, event)


def test_a_long_pass_is_committed_as_it_goes(topics: KafkaSettings, registry_settings: RegistrySettings) -> None:
    client = registry_client(registry_settings)
    checker = SlowChecker()
    with hosting(topics, registry_settings, HostConfig(), checker) as (host, _):
        until_live(topics, client, checker)
        # One account's orders, appended at once: one partition, fetched in one go by the idle host.
        keys = [f"order-{i}" for i in range(ORDERS)]
        orders = [order_placed(envelope=envelope(type(order_placed()), aggregate_id=k)) for k in keys]
        visible = appended_and_read(topics, client, orders, "orders.checked")
        assert sorted(visible) == sorted(keys), "orders undecided"
        assert host.stats.restarts == 0
    first, last = min(visible.values()), checker.handled_at[keys[-1]]
    # The first decisions are read while the pass still has more than a second of work before it.
    assert first < last - 0.5, f"the first decision was visible {first - last:+.2f} s from the last order handled"


class SlowFramer:
    """Ticks taken as frames (one input, one event type: ``streams.host.frames``), ``ROW_S`` a row, each passed on to
    ``signals``; notes when it has handled each."""

    name = "signals"
    partitioned: tuple[str, ...] = ("ticks",)
    broadcast: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.handled_at: dict[str, float] = {}

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        time.sleep(ROW_S)
        self.handled_at[event.envelope.aggregate_id] = time.monotonic()
        return [Forward("signals", event.envelope.aggregate_id)]

    def handle_frame(
        self, topic: str, frame: pl.DataFrame, events: Callable[[list[int]], Sequence[Event]]
    ) -> list[tuple[int, Sequence[Output] | Exception]]:
        return [(row, self.handle(topic, event)) for row, event in enumerate(events(list(range(frame.height))))]

    def reset(self) -> None:
        self.handled_at = {}


def test_a_costly_run_taken_as_frames_is_committed_as_it_goes(
    topics: KafkaSettings, registry_settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing, "recording", lambda: False)  # as a worker without tracing: frames are taken then
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    framer = SlowFramer()
    host = ProcessorHost(framer, topics, client, HostConfig())
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    try:
        assert host.live.wait(120), "the host never went live"
        # One instrument's ticks, appended at once: one partition's run, fetched in one go and taken as frames.
        keys = [f"tick-{i}" for i in range(TICKS)]
        ticks = [tick_ingested(envelope=envelope(type(tick_ingested()), aggregate_id=k)) for k in keys]
        visible = appended_and_read(topics, client, ticks, "signals")
    finally:
        stop.set()
        thread.join(60)
    assert sorted(visible) == sorted(keys), "ticks not passed on"
    assert host.stats.framed == TICKS, "the run was not taken as frames"
    first, last = min(visible.values()), framer.handled_at[keys[-1]]
    # The first outputs are read while the run still has seconds of work before it.
    assert first < last - 1.0, f"the first output was visible {first - last:+.2f} s from the last tick handled"
