"""The host says how long it waited with records held for their turn: the event-time merge's cost, which a plain
consume loop does not pay (bench/processors.py reports it beside each host's rate; operators see it as
``tradecore_merge_held_wait_seconds_total``)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import Recorder, append
from tests.support import log
from tests.support.events import OCCURRED_AT, envelope, order_accepted, tick_ingested

pytestmark = pytest.mark.integration

GRACE_MS = 2_000


def test_a_quote_held_for_the_quiet_orders_input_is_counted_as_held_time_and_one_that_is_not_is_not(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    recorder = Recorder()  # the venue's inputs: accepted orders and ticks, co-partitioned

    def exported() -> float | None:
        return REGISTRY.get_sample_value("tradecore_merge_held_wait_seconds_total", {"processor": recorder.name})

    before = exported() or 0.0
    host = ProcessorHost(recorder, topics, client, HostConfig(grace_ms=GRACE_MS, batch_ms=50))
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    try:
        # An order, then a quote of its instrument a second later in event time, written together: the order goes
        # first, and the quote waits for the orders input — which has just given a record — to sit at the end of
        # its log for its grace period (timed from that record's coming, not from the host's start).
        order = order_accepted(
            envelope=envelope(
                type(order_accepted()), aggregate_id="order-1", occurred_at=OCCURRED_AT - timedelta(seconds=1)
            )
        )
        both = [order, tick_ingested(envelope=envelope(type(tick_ingested()), aggregate_id="tick-1"))]
        log.append(topics, client, both)
        deadline = time.monotonic() + 120
        while len(recorder.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.seen == ["orders.checked:order-1", "ticks:tick-1"]
        held = host.stats.held_wait_s
        assert GRACE_MS / 1000 / 2 <= held < 60, held
        assert (exported() or 0.0) - before >= GRACE_MS / 1000 / 2  # what an operator's dashboard sees

        # The orders input has been idle for its grace since: the next quote is taken at once, and waits no more.
        append(topics, client, tick_ingested(envelope=envelope(type(tick_ingested()), aggregate_id="tick-2")))
        deadline = time.monotonic() + 60
        while len(recorder.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.seen == ["orders.checked:order-1", "ticks:tick-1", "ticks:tick-2"]
        assert host.stats.held_wait_s - held < GRACE_MS / 1000 / 2, host.stats.held_wait_s - held
    finally:
        stop.set()
        thread.join(60)
