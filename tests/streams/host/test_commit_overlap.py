"""While the broker commits a batch the host takes what comes meanwhile: a slow commit delays when the next orders'
decisions become visible, not when they are decided; they are committed once, in the next transaction.

Here the first commit of an order's offset waits until the test lets it go — as a commit on a busy broker takes its
time — on a real producer against the real broker; everything else is the host's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from schemas.settings import RegistrySettings
from streams.host.runner import HostConfig
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import append
from tests.streams.host.test_prompt import hosting, until_live, wait_for
from tests.streams.host.test_stall import checked_keys
from tests.support.events import envelope, order_placed
from tests.support.held_commit import first_orders_commit_held

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """The host's first commit of an order's offset waits until the test lets it go."""
    with first_orders_commit_held(monkeypatch) as held:
        yield held


def test_orders_that_come_during_a_slow_commit_are_decided_meanwhile_and_committed_once(
    topics: KafkaSettings, registry_settings: RegistrySettings, slow_once: tuple[threading.Event, list[str]]
) -> None:
    released, slowed = slow_once
    client = registry_client(registry_settings)
    with hosting(topics, registry_settings, HostConfig()) as (host, checker):
        until_live(topics, client, checker)
        append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1")))
        assert wait_for(lambda: bool(slowed), 60), "the order's offset was never committed"

        append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-2")))
        assert wait_for(lambda: "orders:order-2" in checker.seen, 30), "the host waited for the commit to return"
        assert checked_keys(topics, registry_settings) == []  # neither is visible before its commit returns

        released.set()
        assert wait_for(lambda: sorted(checked_keys(topics, registry_settings)) == ["order-1", "order-2"], 60), (
            checked_keys(topics, registry_settings)
        )
        assert host.stats.restarts == 0
