"""A live consumer that stops fetching — as risk's once did after a broker came back (tests/deploy/test_broker_loss.py)
— is noticed once no record has been taken for ``stall_ms`` while its inputs hold some: the host starts over with
new clients from the committed offsets, and the waiting order is decided, once.

The wedge is injected by pausing the first session's group consumer on every partition it was given, which is what
a wedged consumer looks like from outside: assigned, and fetching nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from schemas.settings import RegistrySettings
from streams.host.fetch import Fetcher
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import append
from tests.streams.host.test_prompt import Checker, hosting, until_live, wait_for
from tests.support.events import envelope, order_placed
from tests.support.independent import IndependentReader

pytestmark = pytest.mark.integration

STALL_MS = 3_000


@pytest.fixture
def wedged_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first time a host goes live its group consumer is paused on all it holds; how many were paused."""
    paused: list[int] = []
    going_live = Fetcher.go_live

    def go_live_then_wedge(self: Fetcher, *args: object, **kwargs: object) -> None:
        going_live(self, *args, **kwargs)  # type: ignore[arg-type]
        if not paused:
            held = self.group.assignment()
            self.group.pause(held)
            paused.append(len(held))

    monkeypatch.setattr(Fetcher, "go_live", go_live_then_wedge)
    return paused


@pytest.fixture
def hosted(
    topics: KafkaSettings, registry_settings: RegistrySettings, wedged_once: list[int]
) -> Iterator[tuple[ProcessorHost, Checker]]:
    with hosting(topics, registry_settings, HostConfig(stall_ms=STALL_MS)) as hosted:
        yield hosted


def checked_keys(topics: KafkaSettings, registry_settings: RegistrySettings) -> list[str]:
    """Every committed record's key on ``orders.checked``."""
    reader = IndependentReader(topics.bootstrap_servers, registry_settings.url)
    try:
        out = topics.topic_prefix + "orders.checked"
        return [key for p in range(topics.partitions) for _, key, _ in reader.partition(out, p)]
    finally:
        reader.close()


def test_a_consumer_that_stops_fetching_is_replaced_and_the_waiting_order_decided_once(
    hosted: tuple[ProcessorHost, Checker],
    topics: KafkaSettings,
    registry_settings: RegistrySettings,
    wedged_once: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, checker = hosted
    client = registry_client(registry_settings)
    until_live(topics, client, checker)  # (ticks are not wedged)
    assert wedged_once and wedged_once[0] > 0, "the first session held no partition to wedge"

    append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1")))
    # Not taken while wedged; taken by the clients the host starts over with once STALL_MS has passed.
    caplog.set_level(logging.WARNING, logger="tradecore.streams")
    assert wait_for(lambda: host.stats.restarts == 1, STALL_MS / 1000 + 30), "the wedged consumer was not replaced"
    # Before starting over, it said what it waited on: the order's partition, not read.
    said = [r.getMessage() for r in caplog.records if "no record taken" in r.getMessage()]
    assert any("(starting over at 3 s)" in s and f"{topics.topic_prefix}orders[" in s for s in said), said
    assert wait_for(lambda: "orders:order-1" in checker.seen, 60), checker.seen
    assert checked_keys(topics, registry_settings) == ["order-1"]
    assert host.stats.restarts == 1  # the new clients were not taken for wedged: they took the order
