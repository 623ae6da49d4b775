"""A partition whose group offsets a stopped instance's transaction still holds is taken once that transaction ends.

An instance killed mid-batch leaves its transaction open, with the batch's offsets in it, until the broker aborts it
(the transaction's timeout, 20 s). The group gives its partitions to another instance after the session timeout
(20 s), and that host asks for the group's committed offsets as a read_committed consumer: stable ones (KIP-447),
which the coordinator does not answer while the transaction is open. The host once took the question's timeout for
a failure and its worker stopped, a second instance lost with the first; it asks again now, and goes live once the
transaction is aborted. Here the stopped instance's transaction is held open by hand and aborted as the broker would.
"""

from __future__ import annotations

import logging

import pytest

from schemas.settings import RegistrySettings
from streams import kafka
from streams.host import fetch
from streams.host.runner import HostConfig
from streams.kafka import TopicPartition
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_prompt import hosting, until_live, wait_for
from tests.streams.host.test_stall import checked_keys
from tests.support.events import envelope, order_placed
from tests.support.log import append

pytestmark = pytest.mark.integration

ORDERS = 30  # accounts (the partition key) enough to land on every partition


def test_a_host_waits_for_a_stopped_instances_transaction_to_end_then_takes_its_partitions(
    topics: KafkaSettings,
    registry_settings: RegistrySettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(fetch, "_ASK_COMMITTED_S", 2.0)  # asked again every 2 s instead of 30
    caplog.set_level(logging.WARNING, logger="tradecore.streams")
    source, group = topics.topic_prefix + "orders", topics.topic_prefix + "risk"
    member = kafka.consumer(topics, group)  # not subscribed: the group's metadata for the stopped instance's commit
    stopped = kafka.producer(topics, **{"transactional.id": f"{group}-stopped"})
    try:
        stopped.init_transactions(30)
        stopped.begin_transaction()
        offsets = [TopicPartition(source, p, 0) for p in range(topics.partitions)]
        stopped.send_offsets_to_transaction(offsets, member.consumer_group_metadata(), 30)
        # ... and the instance is killed: its transaction stays open.

        with hosting(topics, registry_settings, HostConfig(instance="0")) as (host, checker):
            asked_again = lambda: any("not answered yet" in r.getMessage() for r in caplog.records)  # noqa: E731
            assert wait_for(asked_again, 60), "the host was never kept waiting: nothing held the group's offsets"
            assert not host.live.is_set(), "the host went live before the offsets it starts from were known"

            stopped.abort_transaction(30)  # as the broker does once the transaction's timeout has passed
            client = registry_client(registry_settings)
            until_live(topics, client, checker)
            keys = [f"order-{i}" for i in range(ORDERS)]
            append(
                topics,
                client,
                [
                    order_placed(envelope=envelope(type(order_placed()), aggregate_id=k), account_id=f"acct-{k}")
                    for k in keys
                ],
            )
            assert wait_for(lambda: len(checked_keys(topics, registry_settings)) >= ORDERS, 60), "orders undecided"
            assert sorted(checked_keys(topics, registry_settings)) == sorted(keys)
            assert host.stats.restarts == 0, "the host started over instead of asking again"
    finally:
        member.close()
