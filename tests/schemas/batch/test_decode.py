"""The batch decoder reads what fastavro reads, for every event type and every released schema version, and
resolves older writers to today's schema."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.batch import INDEX, BatchDecoder, nodes
from schemas.events import EVENT_TYPES, TickIngested
from tests.schemas.batch import reference
from tests.support import events as examples
from tests.support.properties import example_count


def rows(frame: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != INDEX} for row in frame.to_dicts()]


@reference.of_every_event_type
def test_a_batch_of_any_event_type_decodes_as_fastavro_reads_it(name: str, data: Any) -> None:
    records = data.draw(st.lists(reference.events(name), min_size=1, max_size=4))
    schema = avsc.expanded(name)
    values = [reference.framed(schema, record, reference.SCHEMA_IDS[name]) for record in records]

    batch = BatchDecoder(reference.writers(), EVENT_TYPES.values()).decode(values)

    node = nodes.parse(schema)
    assert batch.malformed == []
    assert rows(batch.frames[name]) == [reference.row(node, reference.read(schema, schema, v)) for v in values]


@pytest.mark.parametrize(
    ("name", "version"),
    [(name, version) for name in sorted(EVENT_TYPES) for version in avsc.released_versions(name)],
)
@settings(
    max_examples=example_count(10),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_records_written_with_every_released_version_decode_as_fastavro_resolves_them(
    name: str, version: int, data: Any
) -> None:
    writer = json.loads(avsc.released_versions(name)[version].read_text())
    writer_node = nodes.parse(writer)
    records = data.draw(st.lists(reference.values(writer_node), min_size=1, max_size=3))
    values = [reference.framed(writer, record, 7) for record in records]

    batch = BatchDecoder(reference.writers({7: json.dumps(writer)}), [EVENT_TYPES[name]]).decode(values)

    reader = avsc.expanded(name)
    expected = [reference.row(nodes.parse(reader), reference.read(writer, reader, v)) for v in values]
    assert batch.malformed == []
    assert rows(batch.frames[name]) == expected


def test_an_older_writer_gets_defaults_for_added_fields_and_loses_removed_ones() -> None:
    today = avsc.expanded("TickIngested")
    # An "older" TickIngested: no last/last_size yet, and a field since dropped.
    older = json.loads(json.dumps(today))
    older["fields"] = [f for f in older["fields"] if f["name"] not in ("last", "last_size")]
    older["fields"].insert(3, {"name": "exchange", "type": "string"})
    record = codec.to_avro(examples.tick_ingested(last=Decimal("1.5")))
    del record["last"], record["last_size"]
    value = reference.framed(older, {**record, "exchange": "BINANCE"}, 8)

    batch = BatchDecoder(reference.writers({8: json.dumps(older)}), [TickIngested]).decode([value])

    expected = reference.row(nodes.parse(today), reference.read(older, today, value))
    assert rows(batch.frames["TickIngested"]) == [expected]
    assert expected["last"] is None and expected["last_size"] is None and "exchange" not in expected


def test_values_of_several_schema_ids_and_events_come_back_per_event_in_batch_order() -> None:
    tick = _example_tick()
    older = {8: avsc.schema_str("TickIngested")}  # the same schema under a second id, as after a re-registration
    moved = b"\x00" + (8).to_bytes(4, "big") + tick[5:]
    batch = BatchDecoder(reference.writers(older), [TickIngested]).decode([tick, moved, tick])
    assert batch.frames["TickIngested"][INDEX].to_list() == [0, 1, 2]


def _example_tick() -> bytes:
    record = codec.to_avro(examples.tick_ingested())
    return reference.framed(avsc.expanded("TickIngested"), record, reference.SCHEMA_IDS["TickIngested"])
