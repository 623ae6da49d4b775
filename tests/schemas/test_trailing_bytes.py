"""Issue 12 F7: a valid record with bytes appended is not an event; the per-record decoder refuses it, so processors
dead-letter it instead of processing it as the event in front of the junk."""

from __future__ import annotations

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from schemas import avsc, codec
from schemas.contract_errors import EventDecodeError
from schemas.serde import EventDeserializer
from streams.kafka.registry import ConfluentRegistry
from tests.schemas.batch import reference
from tests.support import events as examples


@pytest.mark.parametrize(("topic", "event"), [("orders", examples.order_placed()), ("ticks", examples.tick_ingested())])
def test_a_valid_record_with_16_junk_bytes_is_refused_for_trailing_bytes(topic: str, event: object) -> None:
    # confluent-kafka's own in-memory registry: the decoder only asks it for the writer's schema by id.
    client = SchemaRegistryClient.new_client({"url": "mock://trailing-bytes"})
    name = type(event).__name__
    schema_id = client.register_schema(f"{topic}-{name}", Schema(avsc.schema_str(name), "AVRO"))
    value = reference.framed(avsc.expanded(name), codec.to_avro(event), schema_id)  # type: ignore[arg-type]
    reader = EventDeserializer(ConfluentRegistry(client), topic)

    assert reader.deserialize(value) == event
    with pytest.raises(EventDecodeError, match=rf"trailing bytes: 16 bytes left after the tradecore\.events\.{name}"):
        reader.deserialize(value + b"\x00" * 8 + b"junk4567")
