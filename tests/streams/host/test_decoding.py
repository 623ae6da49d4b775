"""The host decodes each fetched batch at once and hands on, per record and in fetch order, the event the per-record
``EventDeserializer`` builds from the same bytes — or, for a value that is no event of its topic, the reason, while
the rest of the batch decodes."""

from __future__ import annotations

import uuid

import pytest

from schemas.contract_errors import EventDecodeError
from schemas.events import Event
from schemas.serde import EventDeserializer, EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams.host.decoding import InputDecoder
from streams.host.inputs import Inputs
from streams.kafka.logreader import RawRecord
from streams.kafka.registry import registry_client
from tests.support.events import edge_cases, every_event, tick_ingested

pytestmark = pytest.mark.integration

TOPICS = ("orders", "executions", "ticks")  # risk's inputs: two partitioned, one broadcast


@pytest.mark.parametrize("small", [1, 10**6], ids=["as-a-batch", "record-by-record"])
def test_a_batch_decodes_to_the_per_record_deserializers_events_in_order_with_bad_values_set_apart(
    registry_settings: RegistrySettings, small: int
) -> None:
    client = registry_client(registry_settings)
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    register_all(client, prefix)
    serializers = {topic: EventSerializer(client, topic, topic_prefix=prefix) for topic in TOPICS}
    deserializers = {prefix + t: EventDeserializer(client, t, topic_prefix=prefix) for t in TOPICS}
    events: list[Event] = [e for e in every_event() + edge_cases() if e.route().topic in TOPICS]
    values = [(prefix + e.route().topic, serializers[e.route().topic].serialize(e)) for e in events]
    bad = [
        (prefix + "orders", b"not avro at all"),
        (prefix + "executions", values[-1][1] + b"junk"),  # a tick on executions, and trailing bytes too
        (prefix + "ticks", serializers["ticks"].serialize(tick_ingested()) + bytes(16)),
        (prefix + "orders", serializers["ticks"].serialize(tick_ingested())),  # an event of another topic
        (prefix + "ticks", b"\x00\x00\x00\x00"),
    ]
    # Malformed values among the good ones, every topic interleaved, as one fetch returns them.
    mixed = [*values[:3], bad[0], *values[3:7], bad[1], bad[2], *values[7:], bad[3], bad[4]]
    records = [RawRecord(topic, 0, offset, 1000 + offset, b"k", value) for offset, (topic, value) in enumerate(mixed)]

    decoded = InputDecoder(Inputs(prefix, TOPICS[:2], TOPICS[2:]), client, small).decode(records)

    assert [d.record for d in decoded] == records
    for item in decoded:
        deserializer = deserializers[item.record.topic]
        if item.event is None:
            with pytest.raises(EventDecodeError):
                deserializer.deserialize(item.record.value)
            assert item.reason.startswith(item.record.topic + ": ")
        else:
            expected = deserializer.deserialize(item.record.value)
            assert item.event == expected
            assert repr(item.event) == repr(expected)  # the same types too: Decimal('0E-8'), timezone.utc
    reasons = [d.reason for d in decoded if d.event is None]
    assert len(reasons) == len(bad)
    assert "magic byte" in reasons[0]
    assert "trailing bytes" in reasons[1] or "TickIngested" in reasons[1]
    assert "trailing bytes: 16 bytes left" in reasons[2]
    assert "TickIngested" in reasons[3]
    assert "too short" in reasons[4]
    assert len([d for d in decoded if d.event is not None]) == len(events)
