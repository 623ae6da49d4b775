"""Issue 12: the record decoder every processor and the projector use, fuzzed over every input topic's event types.

Whatever bytes arrive — a valid record cut short, one with bytes appended, a schema id no registry holds, a flipped
byte, random bytes — the decoder answers with the event or with ``EventDecodeError`` naming why. That error is what
the host and the projector dead-letter and go on from (tests/streams/test_deadletter.py); any other exception would
stop them, so none may escape.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.contract_errors import EventDecodeError
from schemas.events import Event, events_on
from schemas.serde import EventDeserializer
from streams.kafka.registry import ConfluentRegistry
from tests.schemas.batch import reference
from tests.support import events as examples
from tests.support.properties import example_count

TOPICS = sorted({event.route().topic for event in examples.every_event()})


@functools.cache
def _setup(topic: str) -> tuple[EventDeserializer, list[tuple[Event, bytes]]]:
    client = SchemaRegistryClient.new_client({"url": f"mock://fuzz-{topic}"})
    records = []
    for event in [e for e in examples.every_event() + examples.edge_cases() if e.route().topic == topic]:
        name = type(event).__name__
        schema_id = client.register_schema(f"{topic}-{name}", Schema(avsc.schema_str(name), "AVRO"))
        records.append((event, reference.framed(avsc.expanded(name), codec.to_avro(event), schema_id)))
    return EventDeserializer(ConfluentRegistry(client), topic), records


def _mutated(data: st.DataObject, value: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["truncate", "append", "schema id", "flip", "random"]), label="mutation")
    if kind == "truncate":
        return value[: data.draw(st.integers(0, len(value) - 1), label="cut at")]
    if kind == "append":
        return value + data.draw(st.binary(min_size=1, max_size=64), label="junk")
    if kind == "schema id":
        return value[:1] + data.draw(st.integers(10_000, 2**32 - 1), label="id").to_bytes(4, "big") + value[5:]
    if kind == "flip":
        at = data.draw(st.integers(0, len(value) - 1), label="byte")
        return value[:at] + bytes([value[at] ^ data.draw(st.integers(1, 255), label="mask")]) + value[at + 1 :]
    return data.draw(st.binary(max_size=256), label="random bytes")


@pytest.mark.parametrize("topic", TOPICS)
@settings(max_examples=example_count(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_record_decodes_or_is_refused_with_a_reason(topic: str, data: st.DataObject) -> None:
    reader, records = _setup(topic)
    event, value = data.draw(st.sampled_from(records), label="event")
    assert reader.deserialize(value) == event

    bad = _mutated(data, value)
    try:
        decoded: Any = reader.deserialize(bad)
    except EventDecodeError as err:
        assert str(err), "a refusal names its reason"
    else:
        # A flipped byte can leave a valid event (a different price, say): it must still be one of this topic's.
        assert isinstance(decoded, events_on(topic))
