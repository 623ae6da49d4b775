"""The record writer (a few records through the Rust writer, no frame) writes exactly the bytes fastavro writes, for
every event type it takes and their edge cases, and refuses a value that does not fit, naming its field."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.batch import native, nodes
from schemas.batch.records import RecordWriter
from tests.schemas.batch import reference
from tests.support.events import tick_ingested

HEADER = b"\x00\x00\x00\x00\x07"


@reference.of_every_event_type
def test_records_of_any_flat_event_type_encode_byte_for_byte_as_fastavro(name: str, data: Any) -> None:
    node = nodes.parse(avsc.expanded(name))
    if not native.flat(node):
        with pytest.raises(ValueError, match="not flat"):
            RecordWriter(node, HEADER)
        return
    records = data.draw(st.lists(reference.events(name), min_size=1, max_size=4))

    encoded = RecordWriter(node, HEADER).encode(records)

    assert encoded == [reference.framed(avsc.expanded(name), record, 7) for record in records]


def test_a_decimal_with_more_places_than_its_scale_and_a_naive_time_are_refused() -> None:
    node = nodes.parse(avsc.expanded("TickIngested"))
    record = codec.to_avro(tick_ingested())
    writer = RecordWriter(node, HEADER)
    decimals = [f.name for f in node.fields if isinstance(getattr(f.node, "value", f.node), nodes.Decimal)]

    with pytest.raises(ValueError, match=f"{decimals[0]}: .* does not fit scale"):
        writer.encode([{**record, decimals[0]: Decimal("1.123456789123")}])
    naive = {**record["envelope"], "occurred_at": datetime(2021, 1, 8)}
    with pytest.raises(ValueError, match=r"envelope\.occurred_at: a naive time"):
        writer.encode([{**record, "envelope": naive}])
