"""Events to the Avro dict form and back: exact for every value a schema allows, and a clear refusal otherwise."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import fastavro
import pytest

from schemas import avsc, codec
from schemas.contract_errors import EventEncodeError
from schemas.events import Event, OrderFilled, OrderPlaced
from tests.support import events as examples


def fastavro_roundtrip(event: Event) -> Event:
    schema = fastavro.parse_schema(json.loads(avsc.schema_str(type(event).__name__)))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, codec.to_avro(event))
    buffer.seek(0)
    record = fastavro.schemaless_reader(buffer, schema, schema)
    assert isinstance(record, dict)
    return codec.from_avro(type(event), record)


@pytest.mark.parametrize("event", examples.every_event() + examples.edge_cases(), ids=lambda e: type(e).__name__)
def test_every_example_comes_back_identical_scale_microseconds_and_enum_types_included(event: Event) -> None:
    back = fastavro_roundtrip(event)
    assert back == event
    assert repr(back) == repr(event)  # Decimal('0.25000000') stays so; Side.BUY stays a Side


def test_a_decimal_with_fewer_places_comes_back_at_the_schema_scale() -> None:
    back = fastavro_roundtrip(examples.order_placed(quantity=Decimal("1.5")))
    assert isinstance(back, OrderPlaced)
    assert str(back.quantity) == "1.50000000"


def test_trailing_zeros_beyond_the_scale_are_accepted() -> None:
    back = fastavro_roundtrip(examples.order_placed(quantity=Decimal("1.5000000000")))
    assert isinstance(back, OrderPlaced)
    assert str(back.quantity) == "1.50000000"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            Decimal("0.123456789"),
            r"OrderFilled.fill_quantity: 0.123456789 has more than 8 decimal places \(decimal\(18, 8\)\)",
        ),
        (Decimal("10000000000"), r"OrderFilled.fill_quantity: 10000000000 has more than 10 integer digits"),
        (Decimal("NaN"), r"OrderFilled.fill_quantity: Decimal\('NaN'\) is not a finite Decimal"),
        (0.1, r"OrderFilled.fill_quantity: 0.1 is not a finite Decimal; the schema says decimal\(18, 8\)"),
    ],
)
def test_a_decimal_that_does_not_fit_is_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(EventEncodeError, match=message):
        codec.to_avro(examples.order_filled(fill_quantity=value))


def test_money_has_twenty_integer_digits() -> None:
    assert codec.to_avro(examples.order_filled(fee=Decimal("-99999999999999999999.99999999")))
    with pytest.raises(EventEncodeError, match=r"OrderFilled.fee: .* more than 20 integer digits"):
        codec.to_avro(examples.order_filled(fee=Decimal("1E+20")))


@pytest.mark.parametrize(
    "when",
    [datetime(2024, 3, 1, 12, 0), datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))],
    ids=["naive", "utc+1"],
)
def test_a_time_that_is_not_utc_is_refused(when: datetime) -> None:
    event = examples.order_filled(envelope=examples.envelope(OrderFilled, occurred_at=when))
    with pytest.raises(EventEncodeError, match=r"OrderFilled.envelope.occurred_at: .* is not a UTC datetime"):
        codec.to_avro(event)


def test_an_envelope_naming_another_event_or_version_is_refused() -> None:
    wrong_type = examples.envelope(OrderFilled, event_type="OrderPlaced")
    with pytest.raises(EventEncodeError, match="the envelope says OrderPlaced v1, but this is OrderFilled v1"):
        codec.to_avro(examples.order_filled(envelope=wrong_type))
    wrong_version = examples.envelope(OrderFilled, schema_version=7)
    with pytest.raises(EventEncodeError, match="the envelope says OrderFilled v7"):
        codec.to_avro(examples.order_filled(envelope=wrong_version))


def test_the_dict_form_is_what_other_avro_readers_expect() -> None:
    record = codec.to_avro(examples.order_placed())
    assert record["side"] == "BUY" and record["quantity"] == Decimal("0.25000000")
    assert record["envelope"]["occurred_at"] == datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert list(record) == [field["name"] for field in avsc.expanded("OrderPlaced")["fields"]]
