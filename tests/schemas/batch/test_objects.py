"""Events built from decoded frames are the events ``EventDeserializer`` builds from the same bytes: equal, and of
the same types down to each value (a decimal's exponent, a timestamp's tzinfo), so processors behave the same and
what they derive encodes to the same bytes."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.batch import BatchDecoder
from schemas.batch.objects import EventBuilder
from schemas.events import EVENT_TYPES
from tests.schemas.batch import reference
from tests.support.events import tick_ingested


@reference.of_every_event_type
def test_events_built_from_a_frame_are_those_the_per_record_deserializer_builds(name: str, data: Any) -> None:
    records = data.draw(st.lists(reference.events(name), min_size=1, max_size=5))
    schema = avsc.expanded(name)
    cls = EVENT_TYPES[name]
    values = [reference.framed(schema, record, reference.SCHEMA_IDS[name]) for record in records]

    frame = BatchDecoder(reference.writers(), EVENT_TYPES.values()).decode(values).frames[name]
    built = EventBuilder(cls).events(frame)

    expected = [codec.from_avro(cls, reference.read(schema, schema, value)) for value in values]
    assert built == expected
    assert [repr(event) for event in built] == [repr(event) for event in expected]  # types too: Decimal('0E-8')


def test_refused_names_the_rows_whose_uuid_does_not_build_with_the_reason_events_gives() -> None:
    schema = avsc.expanded("TickIngested")
    records = [codec.to_avro(tick_ingested()) for _ in range(4)]
    ids = ["not-a-uuid", "{{" + "ab" * 16 + "}}", str(uuid.uuid4()).upper(), str(uuid.uuid4())]
    for record, event_id in zip(records, ids, strict=True):
        record["envelope"] = {**record["envelope"], "event_id": event_id}
    values = [reference.framed(schema, record, reference.SCHEMA_IDS["TickIngested"]) for record in records]
    frame = BatchDecoder(reference.writers(), EVENT_TYPES.values()).decode(values).frames["TickIngested"]
    builder = EventBuilder(EVENT_TYPES["TickIngested"])

    refused = builder.refused(frame)

    built = builder.events(frame)
    assert list(refused) == [0]  # braces around the hex and upper case are uuids too, as UUID() reads them
    assert refused[0] == built[0]
    assert "badly formed hexadecimal UUID string" in refused[0]
    assert all(not isinstance(event, str) for event in built[1:])
