"""The batch encoder writes exactly the bytes fastavro writes, for every event type and its edge cases."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.batch import BatchEncodeError, BatchEncoder, nodes
from schemas.events import EVENT_TYPES, TickIngested
from tests.schemas.batch import reference
from tests.support import events as examples


@reference.of_every_event_type
def test_a_batch_of_any_event_type_encodes_byte_for_byte_as_fastavro(name: str, data: Any) -> None:
    records = data.draw(st.lists(reference.events(name), min_size=1, max_size=4))
    schema = avsc.expanded(name)
    schema_id = reference.SCHEMA_IDS[name]
    expected = [reference.framed(schema, record, schema_id) for record in records]

    encoded = BatchEncoder(EVENT_TYPES[name], schema_id).encode(reference.frame(nodes.parse(schema), records))

    assert encoded == expected


def test_the_example_events_encode_as_the_per_record_path_writes_them() -> None:
    for event in [*examples.every_event(), *examples.edge_cases()]:
        name = type(event).__name__
        schema = avsc.expanded(name)
        record = codec.to_avro(event)
        frame = reference.frame(nodes.parse(schema), [record])
        assert BatchEncoder(type(event), 9).encode(frame) == [reference.framed(schema, record, 9)], name


def test_an_empty_frame_encodes_to_no_values() -> None:
    frame = reference.frame(nodes.parse(avsc.expanded("TickIngested")), [])
    assert BatchEncoder(TickIngested, 9).encode(frame) == []


def test_a_null_in_a_required_field_is_refused_naming_the_field() -> None:
    record = codec.to_avro(examples.tick_ingested())
    frame = reference.frame(nodes.parse(avsc.expanded("TickIngested")), [record])
    with pytest.raises(BatchEncodeError, match=r"TickIngested\.venue: 1 nulls"):
        BatchEncoder(TickIngested, 9).encode(frame.with_columns(pl.lit(None, dtype=pl.String).alias("venue")))


def test_a_missing_column_and_a_foreign_envelope_are_refused() -> None:
    record = codec.to_avro(examples.tick_ingested())
    frame = reference.frame(nodes.parse(avsc.expanded("TickIngested")), [record])
    with pytest.raises(BatchEncodeError, match="no column 'source'"):
        BatchEncoder(TickIngested, 9).encode(frame.drop("source"))
    placed = reference.frame(nodes.parse(avsc.expanded("OrderPlaced")), [codec.to_avro(examples.order_placed())])
    with pytest.raises(BatchEncodeError, match="envelope names another event"):
        BatchEncoder(TickIngested, 9).encode(frame.with_columns(placed.get_column("envelope")))


def test_a_naive_timestamp_column_is_refused() -> None:
    record = codec.to_avro(examples.tick_ingested())
    frame = reference.frame(nodes.parse(avsc.expanded("TickIngested")), [record])
    naive = frame.with_columns(pl.col("exchange_ts").dt.replace_time_zone(None))
    with pytest.raises(BatchEncodeError, match=r"exchange_ts.*not a time-zone-aware datetime"):
        BatchEncoder(TickIngested, 9).encode(naive)
