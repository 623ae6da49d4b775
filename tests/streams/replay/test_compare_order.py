"""`verify-processors` compares each aggregate's events in their order, not only each event: a log holding a
processor's events swapped, or one of them twice, is not what a replay derives, even when every event is identical."""

from __future__ import annotations

import uuid

import pytest

from schemas.events import OrderAccepted
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.replay.verify import compare
from streams.settings import KafkaSettings
from tests.support.events import envelope, order_accepted
from tests.support.log import append

pytestmark = pytest.mark.integration


def accepted(order: str) -> OrderAccepted:
    """An order's acceptance: all share one record key (the instrument), as an instance's tasks' decisions do."""
    return order_accepted(envelope=envelope(OrderAccepted, event_id=uuid.uuid4(), aggregate_id=order), order_id=order)


def test_an_aggregates_events_in_another_order_or_twice_are_named_though_every_event_is_identical(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    source = topics.topic_prefix
    namespaces = {n: topics.model_copy(update={"topic_prefix": f"{source}{n}."}) for n in ("same", "swapped", "twice")}
    admin = kafka.admin(topics)
    for namespace in namespaces.values():
        ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), topics.partitions), namespace.topic_prefix)
    first, second, other = accepted("ord-1"), accepted("ord-1"), accepted("ord-2")  # two of one aggregate
    append(topics, client, [first, second, other])
    append(namespaces["same"], client, [first, other, second])  # other aggregates' events may interleave otherwise
    append(namespaces["swapped"], client, [second, first, other])
    append(namespaces["twice"], client, [first, second, first, other])

    def against(name: str) -> tuple[bool, int, list[str]]:
        result = compare(topics, client, source, namespaces[name].topic_prefix, "orders.checked")
        assert not (result.differing or result.missing or result.extra or result.undecodable), result
        return result.ok, result.identical, result.reordered

    assert against("same") == (True, 3, [])
    assert against("swapped") == (False, 3, ["ord-1"])
    assert against("twice") == (False, 3, ["ord-1"])
