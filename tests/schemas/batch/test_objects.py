"""Events built from decoded frames are the events ``EventDeserializer`` builds from the same bytes: equal, and of
the same types down to each value (a decimal's exponent, a timestamp's tzinfo), so processors behave the same and
what they derive encodes to the same bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.batch import BatchDecoder
from schemas.batch.objects import EventBuilder
from schemas.events import EVENT_TYPES
from tests.schemas.batch import reference


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
