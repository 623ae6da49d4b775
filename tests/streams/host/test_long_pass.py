"""A pass that takes long — a slow model's scoring, costly records fetched at once — is committed as it goes, once
its batch has been open a second: its first decisions are visible while it still works through the rest, and no
transaction stays open much past that (the broker aborts one left open past its timeout). A batch used to be committed
by time only between passes, so one pass over a fetched backlog was one transaction, however long it took."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from confluent_kafka import TopicPartition

from schemas.events import Event
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import Output
from streams.host.runner import HostConfig
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_prompt import Checker, hosting, until_live
from tests.support.events import envelope, order_placed
from tests.support.log import append

pytestmark = pytest.mark.integration

ORDERS = 60
COST_S = 0.05  # each order's handling: the pass over all of them takes 3 s


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
        reader = kafka.consumer(topics, f"{topics.topic_prefix}long-pass-reader")  # read_committed
        try:
            out = topics.topic_prefix + "orders.checked"
            reader.assign(
                [TopicPartition(out, p, 0) for p in reader.list_topics(out, timeout=30).topics[out].partitions]
            )
            # One account's orders, appended at once: one partition, fetched in one go by the idle host.
            keys = [f"order-{i}" for i in range(ORDERS)]
            append(
                topics, client, [order_placed(envelope=envelope(type(order_placed()), aggregate_id=k)) for k in keys]
            )
            visible: dict[str, float] = {}
            deadline = time.monotonic() + 60
            while len(visible) < ORDERS and time.monotonic() < deadline:
                for message in reader.consume(100, 0.02):
                    if message.error() is None:
                        key = message.key().decode()
                        assert key not in visible, f"{key} decided twice"
                        visible[key] = time.monotonic()
        finally:
            reader.close()
        assert sorted(visible) == sorted(keys), "orders undecided"
        assert host.stats.restarts == 0
    first, last = min(visible.values()), checker.handled_at[keys[-1]]
    # The first decisions are read while the pass still has more than a second of work before it.
    assert first < last - 0.5, f"the first decision was visible {first - last:+.2f} s from the last order handled"
