"""A host that starts over in the middle of a rebalance leaves the group, so that every partition finds an owner.

`test_instances_come_and_go` once saw execution-0's commit of the partitions it was giving up refused
(ILLEGAL_GENERATION) as execution-1 joined. It started over with a new consumer under its static id; the group handed
that consumer the share the old one was keeping, with no rebalance, and execution-1 held no partition for good: the
orders of the other half were never decided. Here the refusal is injected at the same point, the first revocation of
the first instance, and every order must still be decided, once.
"""

from __future__ import annotations

import contextlib

import pytest

from schemas.settings import RegistrySettings
from streams.host.runner import HostConfig, _Session
from streams.host.transaction import StartOver
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.host.test_prompt import hosting, until_live, wait_for
from tests.streams.host.test_stall import checked_keys
from tests.support.events import envelope, order_placed
from tests.support.log import append

pytestmark = pytest.mark.integration

ORDERS = 60  # accounts (the partition key) enough to land on every partition


def test_an_instance_whose_revocation_commit_fails_leaves_no_partition_without_an_owner(
    topics: KafkaSettings, registry_settings: RegistrySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused: list[str] = []
    revoked = _Session._revoked

    def refuse_the_first(self: _Session, partitions: list[tuple[str, int]]) -> None:
        if not refused and not self._closing and self._config.instance == "0":
            refused.append(str(partitions))
            raise StartOver("injected: the revocation commit was refused (ILLEGAL_GENERATION)")
        revoked(self, partitions)

    monkeypatch.setattr(_Session, "_revoked", refuse_the_first)
    client = registry_client(registry_settings)
    with contextlib.ExitStack() as hosts:
        first, first_checker = hosts.enter_context(hosting(topics, registry_settings, HostConfig(instance="0")))
        until_live(topics, client, first_checker)
        second, _ = hosts.enter_context(hosting(topics, registry_settings, HostConfig(instance="1")))
        assert wait_for(lambda: first.stats.restarts == 1, 120), "the first instance never gave up a partition"
        assert refused

        keys = [f"order-{i}" for i in range(ORDERS)]
        orders = [
            order_placed(envelope=envelope(type(order_placed()), aggregate_id=k), account_id=f"acct-{k}") for k in keys
        ]
        append(topics, client, orders)
        assert wait_for(lambda: len(checked_keys(topics, registry_settings)) >= ORDERS, 120), (
            f"{ORDERS - len(checked_keys(topics, registry_settings))} order(s) never decided: a partition has no owner"
        )
        assert sorted(checked_keys(topics, registry_settings)) == sorted(keys)
        assert second.stats.consumed > 0, "the joining instance was left without a partition"
        assert first.stats.restarts == 1
