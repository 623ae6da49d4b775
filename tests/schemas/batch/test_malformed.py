"""Malformed values in a batch come back each with its index and reason; every other value still decodes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import avsc, codec
from schemas.batch import INDEX, BatchDecoder
from schemas.events import EVENT_TYPES, OrderPlaced, TickIngested
from tests.schemas.batch import reference
from tests.support import events as examples
from tests.support.properties import example_count


def good(event: Any) -> bytes:
    name = type(event).__name__
    return reference.framed(avsc.expanded(name), codec.to_avro(event), reference.SCHEMA_IDS[name])


def test_truncated_trailing_unknown_unframed_and_foreign_values_are_set_apart_and_the_rest_decode() -> None:
    tick, placed = good(examples.tick_ingested()), good(examples.order_placed())
    unknown = b"\x00" + (2**31 - 1).to_bytes(4, "big") + placed[5:]
    values: list[bytes | None] = [
        tick,
        tick + bytes(16),  # a valid record and 16 junk bytes
        placed[:-6],  # truncated
        unknown,
        b'{"order_id": "ord-1"}',  # not framed
        placed,
        None,  # a tombstone
        b"\x00\x00\x00",
        tick,
    ]
    decoder = BatchDecoder(reference.writers(), [TickIngested, OrderPlaced])

    batch = decoder.decode(values)

    reasons = {item.index: item.reason for item in batch.malformed}
    assert sorted(reasons) == [1, 2, 3, 4, 6, 7]
    assert "trailing bytes: 16 bytes left after the TickIngested Avro body" in reasons[1]
    assert "truncated" in reasons[2] and "OrderPlaced" in reasons[2]
    assert reasons[3] == "schema id 2147483647 is not in the registry"
    assert reasons[4] == "first byte is 0x7b, not the Confluent magic byte 0x00"
    assert "0 bytes is too short" in reasons[6] and "3 bytes is too short" in reasons[7]
    assert batch.frames["TickIngested"][INDEX].to_list() == [0, 8]
    assert batch.frames["OrderPlaced"][INDEX].to_list() == [5]
    assert batch.frames["OrderPlaced"].row(0, named=True)["order_id"] == examples.order_placed().order_id


def test_an_event_this_decoder_does_not_read_is_malformed_naming_it() -> None:
    batch = BatchDecoder(reference.writers(), [OrderPlaced]).decode([good(examples.tick_ingested())])
    assert [m.index for m in batch.malformed] == [0]
    assert "tradecore.events.TickIngested, not one of tradecore.events.OrderPlaced" in batch.malformed[0].reason
    assert batch.frames == {}


def test_a_string_that_is_not_utf8_fails_its_record_naming_the_field() -> None:
    placed = good(examples.order_placed())
    accented = good(examples.order_placed(order_id="é"))
    at = accented.index("é".encode())
    corrupt = accented[:at] + b"\xff\xfe" + accented[at + 2 :]
    batch = BatchDecoder(reference.writers(), [OrderPlaced]).decode([corrupt, placed])
    assert [(m.index, "order_id: not UTF-8" in m.reason) for m in batch.malformed] == [(0, True)]
    assert batch.frames["OrderPlaced"][INDEX].to_list() == [1]


@settings(max_examples=example_count(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_cut_or_appendix_of_any_event_is_refused_and_its_neighbours_decode(data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(EVENT_TYPES)))
    record = data.draw(reference.events(name))
    value = reference.framed(avsc.expanded(name), record, reference.SCHEMA_IDS[name])
    cut = data.draw(st.integers(0, len(value) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=32))
    broken = data.draw(st.sampled_from([value[:cut], value + junk]))
    tick = good(examples.tick_ingested())

    batch = BatchDecoder(reference.writers(), EVENT_TYPES.values()).decode([tick, broken, tick])

    assert [m.index for m in batch.malformed] == [1]
    assert batch.frames["TickIngested"][INDEX].to_list() == [0, 2]
