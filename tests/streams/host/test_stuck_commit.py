"""A commit that never comes back — librdkafka's ``send_offsets_to_transaction`` ignoring its timeout once the group
coordinator's broker is gone (confluentinc/librdkafka#5456, #5511) — is given up on after ``SETTLE_S``: the host
starts over with a new producer, which fences the stuck one, and the waiting order is decided, once.

tests/deploy/test_broker_loss.py saw risk's host blocked in that call for minutes after a broker was killed, taking
nothing. Here the first call that commits an order's offset blocks until the test ends, on a real producer against
the real broker; everything else is the host's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas.settings import RegistrySettings
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka import transactions
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_journal import append
from tests.streams.host.test_prompt import Checker, hosting, until_live, wait_for
from tests.streams.host.test_stall import checked_keys
from tests.support.events import envelope, order_placed
from tests.support.held_commit import first_orders_commit_held

pytestmark = pytest.mark.integration

SETTLE_S = 3


@pytest.fixture
def stuck_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The host's first commit of an order's offset does not come back; what it was committing."""
    monkeypatch.setattr(transactions, "SETTLE_S", SETTLE_S)
    with first_orders_commit_held(monkeypatch) as (_released, stuck):
        yield stuck


@pytest.fixture
def hosted(
    topics: KafkaSettings, registry_settings: RegistrySettings, stuck_once: list[str]
) -> Iterator[tuple[ProcessorHost, Checker]]:
    with hosting(topics, registry_settings, HostConfig()) as hosted:
        yield hosted


def test_a_commit_that_never_comes_back_is_given_up_on_and_the_order_decided_once(
    hosted: tuple[ProcessorHost, Checker],
    topics: KafkaSettings,
    registry_settings: RegistrySettings,
    stuck_once: list[str],
) -> None:
    host, checker = hosted
    client = registry_client(registry_settings)
    until_live(topics, client, checker)

    append(topics, client, order_placed(envelope=envelope(type(order_placed()), aggregate_id="order-1")))
    assert wait_for(lambda: bool(stuck_once), 60), "the order's offset was never committed"
    assert host.stats.restarts == 0
    assert wait_for(lambda: host.stats.restarts == 1, SETTLE_S + 30), "the host stayed in the stuck commit"
    # The new session took the order again (its first transaction was never committed) and committed it once; the
    # stuck producer's open transaction, holding the first decision, was fenced and aborted.
    assert wait_for(lambda: checked_keys(topics, registry_settings) == ["order-1"], 60), checked_keys(
        topics, registry_settings
    )
    assert host.stats.restarts == 1
