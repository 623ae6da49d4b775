"""PositionBook by hand-worked examples: average cost, realized PnL, fees, rounding, duplicates and refusals."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from domain.derive import event_id_for
from domain.positions import COST_METHOD, InvalidFillError, PositionBook, PositionsError, mark_to_market
from schemas import avsc, codec
from schemas.events import OrderFilled, PositionChanged, Side
from tests.support import events as examples

BUY, SELL = Side.BUY, Side.SELL
ACCOUNT, BTC = examples.ACCOUNT, examples.INSTRUMENT


def fill(fill_id: str, side: Side, quantity: str, price: str, fee: str = "0", **overrides: Any) -> OrderFilled:
    return examples.order_filled(
        fill_id=fill_id,
        side=side,
        fill_quantity=Decimal(quantity),
        fill_price=Decimal(price),
        fee=Decimal(fee),
        **overrides,
    )


def apply_all(book: PositionBook, *fills: OrderFilled) -> list[PositionChanged]:
    events = [book.apply_fill(f) for f in fills]
    assert all(e is not None for e in events)
    return [e for e in events if e is not None]


def state(event: PositionChanged) -> tuple[str, str, str, str]:
    """(quantity, average price, realized PnL, fees) as written, at the schema's 8 places."""
    return str(event.quantity), str(event.average_price), str(event.realized_pnl), str(event.fees_paid)


# --- average cost, step by step -----------------------------------------------------------------------------------


def test_a_long_opens_grows_shrinks_and_closes() -> None:
    book = PositionBook(ACCOUNT)
    events = apply_all(
        book,
        fill("f1", BUY, "2", "100"),  # open: average = fill price
        fill("f2", BUY, "1", "130"),  # add: (2*100 + 1*130) / 3 = 110
        fill("f3", SELL, "1", "120"),  # partial close: (120 - 110) * 1 = +10; the average stays
        fill("f4", SELL, "2", "105"),  # full close: 10 + (105 - 110) * 2 = 0; flat resets the average
    )
    assert [state(e) for e in events] == [
        ("2.00000000", "100.00000000", "0E-8", "0E-8"),
        ("3.00000000", "110.00000000", "0E-8", "0E-8"),
        ("2.00000000", "110.00000000", "10.00000000", "0E-8"),
        ("0E-8", "0E-8", "0E-8", "0E-8"),
    ]
    assert book.position(BTC).is_flat


def test_a_sell_through_zero_closes_the_long_and_opens_a_short_at_the_fill_price() -> None:
    book = PositionBook(ACCOUNT)
    events = apply_all(
        book,
        fill("f1", BUY, "2", "110"),
        fill("f2", SELL, "5", "120"),  # closes 2: (120 - 110) * 2 = +20; opens 3 short at 120
        fill("f3", SELL, "1", "80"),  # adds to the short: (3*120 + 1*80) / 4 = 110
        fill("f4", BUY, "1", "100"),  # covers 1 short: (100 - 110) * 1 * -1 = +10
        fill("f5", BUY, "1", "130"),  # covers 1 short at a loss: (130 - 110) * -1 = -20
    )
    assert [state(e) for e in events] == [
        ("2.00000000", "110.00000000", "0E-8", "0E-8"),
        ("-3.00000000", "120.00000000", "20.00000000", "0E-8"),
        ("-4.00000000", "110.00000000", "20.00000000", "0E-8"),
        ("-3.00000000", "110.00000000", "30.00000000", "0E-8"),
        ("-2.00000000", "110.00000000", "10.00000000", "0E-8"),
    ]


def test_a_buy_through_zero_closes_the_short_and_opens_a_long_at_the_fill_price() -> None:
    book = PositionBook(ACCOUNT)
    events = apply_all(
        book,
        fill("f1", SELL, "0.5", "40000"),
        fill("f2", BUY, "0.75", "39000"),  # closes 0.5 short: (39000 - 40000) * 0.5 * -1 = +500; opens 0.25 long
        fill("f3", SELL, "0.25", "39100"),  # closes the long: (39100 - 39000) * 0.25 = +25
    )
    assert [state(e) for e in events] == [
        ("-0.50000000", "40000.00000000", "0E-8", "0E-8"),
        ("0.25000000", "39000.00000000", "500.00000000", "0E-8"),
        ("0E-8", "0E-8", "525.00000000", "0E-8"),
    ]


def test_fees_accumulate_apart_from_realized_pnl_and_neither_resets_when_flat() -> None:
    book = PositionBook(ACCOUNT)
    events = apply_all(
        book,
        fill("f1", BUY, "1", "100", fee="0.04"),
        fill("f2", SELL, "1", "101", fee="-0.0101"),  # a maker rebate
        fill("f3", BUY, "1", "100", fee="0.04"),
    )
    assert [state(e) for e in events] == [
        ("1.00000000", "100.00000000", "0E-8", "0.04000000"),
        ("0E-8", "0E-8", "1.00000000", "0.02990000"),  # realized is the price move only, fees apart
        ("1.00000000", "100.00000000", "1.00000000", "0.06990000"),
    ]


# --- rounding and the residue -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second_price", "average"),
    [
        ("1.00000001", "1.00000000"),  # (1 + 1.00000001) / 2 = 1.000000005: a tie, to the even 0
        ("1.00000003", "1.00000002"),  # 1.000000015: a tie, to the even 2 (half-up would say the same; next one not)
        ("1.00000005", "1.00000002"),  # 1.000000025: a tie, to the even 2 where half-up gives 1.00000003
        ("1.00000004", "1.00000002"),  # 1.00000002 exactly
    ],
)
def test_the_average_is_rounded_to_8_places_half_to_even(second_price: str, average: str) -> None:
    book = PositionBook(ACCOUNT)
    *_, last = apply_all(book, fill("f1", BUY, "1", "1"), fill("f2", BUY, "1", second_price))
    assert str(last.average_price) == average


def test_the_averaging_residue_is_realized_when_the_position_closes_so_a_round_trip_realizes_its_net_cash() -> None:
    book = PositionBook(ACCOUNT)
    events = apply_all(
        book,
        fill("f1", BUY, "1", "100"),
        fill("f2", BUY, "2", "100.00000001"),  # cost 300.00000002 / 3 = 100.0000000066..: average 100.00000001
        fill("f3", SELL, "1", "101"),  # partial: (101 - 100.00000001) * 1 = 0.99999999, the average stays
        fill("f4", SELL, "2", "101"),  # close: 2 * 101 - (300.00000002 - 100.00000001) = 1.99999999
    )
    assert [state(e)[:3] for e in events] == [
        ("1.00000000", "100.00000000", "0E-8"),
        ("3.00000000", "100.00000001", "0E-8"),
        ("2.00000000", "100.00000001", "0.99999999"),
        ("0E-8", "0E-8", "2.99999998"),
    ]
    # The average alone would have said (101 - 100.00000001) * 3 = 2.99999997; the residue of -0.00000001 left out
    # of the average comes back at the close, and the round trip realizes what it did to cash: 303 - 300.00000002.
    assert events[-1].realized_pnl == Decimal("303") - Decimal("300.00000002")


def test_realized_pnl_is_kept_exact_and_rounded_once_when_written_so_rounding_never_accumulates() -> None:
    # Each round trip realizes 0.5 * 0.00000001 = 0.000000005, half a unit of the 8th place.
    book = PositionBook(ACCOUNT)
    round_trip = ("0.5", "0.00000003"), ("0.5", "0.00000004")
    events = apply_all(
        book,
        *(
            fill(f"f{n}-{leg}", side, quantity, price)
            for n in range(3)
            for leg, (side, (quantity, price)) in enumerate(zip((BUY, SELL), round_trip, strict=True))
        ),
    )
    # Exact: 0.000000005, 0.00000001, 0.000000015; each written rounded half-even. Rounding each increment instead
    # would have written 0 three times.
    assert [e.realized_pnl for e in events[1::2]] == [Decimal("0E-8"), Decimal("1E-8"), Decimal("2E-8")]
    assert book.position(BTC).realized_pnl == Decimal("0.000000015")


# --- mark to market -----------------------------------------------------------------------------------------------


def test_mark_to_market_is_the_unrealized_pnl_of_a_long_a_short_and_a_flat_position() -> None:
    long, short, flat = PositionBook(ACCOUNT), PositionBook(ACCOUNT), PositionBook(ACCOUNT)
    apply_all(long, fill("f1", BUY, "2", "100"), fill("f2", BUY, "1", "130"))  # 3 @ 110
    apply_all(short, fill("f1", SELL, "3", "120"))  # -3 @ 120
    apply_all(flat, fill("f1", BUY, "1", "100"), fill("f2", SELL, "1", "90"))
    assert mark_to_market(long.position(BTC), Decimal("120")) == Decimal("30.00000000")
    assert mark_to_market(long.position(BTC), Decimal("100")) == Decimal("-30.00000000")
    assert mark_to_market(short.position(BTC), Decimal("100")) == Decimal("60.00000000")
    assert mark_to_market(flat.position(BTC), Decimal("12345")) == 0
    assert mark_to_market(PositionBook(ACCOUNT).position("ETHUSDT"), Decimal("1")) == 0


def test_mark_to_market_is_what_closing_at_the_mark_would_realize_residue_included() -> None:
    book = PositionBook(ACCOUNT)
    apply_all(book, fill("f1", BUY, "1", "100"), fill("f2", BUY, "2", "100.00000001"))
    before = book.position(BTC)
    unrealized = mark_to_market(before, Decimal("101"))
    apply_all(book, fill("f3", SELL, "3", "101"))
    assert unrealized == Decimal("2.99999998") == book.position(BTC).realized_pnl - before.realized_pnl


def test_mark_to_market_refuses_a_price_that_is_not_a_number() -> None:
    with pytest.raises(PositionsError, match="not a finite decimal"):
        mark_to_market(PositionBook(ACCOUNT).position(BTC), Decimal("NaN"))


# --- duplicates ---------------------------------------------------------------------------------------------------


def test_a_redelivered_fill_is_ignored_and_changes_nothing() -> None:
    book = PositionBook(ACCOUNT)
    first = book.apply_fill(fill("f1", BUY, "2", "100", fee="0.08"))
    before = book.to_snapshot()
    assert book.apply_fill(fill("f1", BUY, "2", "100", fee="0.08")) is None
    assert book.apply_fill(fill("f1", SELL, "9", "1")) is None  # the id decides, not the content
    assert book.to_snapshot() == before
    second = book.apply_fill(fill("f2", SELL, "1", "110"))
    assert first is not None and second is not None
    assert second.envelope.sequence == first.envelope.sequence + 1  # the duplicates took no sequence number
    assert state(second) == ("1.00000000", "100.00000000", "10.00000000", "0.08000000")


def test_a_fill_id_is_unique_per_instrument_so_the_same_id_on_another_instrument_is_applied() -> None:
    book = PositionBook(ACCOUNT)
    apply_all(book, fill("fill-1", BUY, "1", "40000"), fill("fill-1", BUY, "100", "8500", instrument="XBTUSD"))
    assert book.position(BTC).quantity == 1
    assert book.position("XBTUSD").quantity == 100
    assert sorted(book.positions) == [BTC, "XBTUSD"]


# --- the event ----------------------------------------------------------------------------------------------------


def test_the_event_is_stamped_from_the_fill_with_a_gap_free_sequence_per_account_and_instrument() -> None:
    book = PositionBook(ACCOUNT)
    fills = [
        fill("f1", BUY, "1", "100"),
        fill("f2", BUY, "1", "8500", instrument="XBTUSD"),
        fill("f3", SELL, "1", "101"),
    ]
    events = apply_all(book, *fills)
    assert [(e.envelope.aggregate_id, e.envelope.sequence) for e in events] == [
        (f"{ACCOUNT}/{BTC}", 1),
        (f"{ACCOUNT}/XBTUSD", 1),
        (f"{ACCOUNT}/{BTC}", 2),
    ]
    for trigger, event in zip(fills, events, strict=True):
        envelope = event.envelope
        assert envelope.event_id == event_id_for(PositionChanged, envelope.aggregate_id, envelope.sequence)
        assert envelope.causation_id == str(trigger.envelope.event_id)
        assert envelope.correlation_id == trigger.envelope.correlation_id
        assert envelope.occurred_at == trigger.envelope.occurred_at
        assert envelope.recorded_at == trigger.envelope.recorded_at
        assert (envelope.event_type, envelope.schema_version) == ("PositionChanged", PositionChanged.schema_version())
        assert (event.account_id, event.key, event.fill_id) == (ACCOUNT, ACCOUNT, trigger.fill_id)
        assert event.cost_method == COST_METHOD == "AVERAGE_COST"


def test_every_event_fits_its_avro_schema_and_reads_back_identical() -> None:
    book = PositionBook(ACCOUNT)
    events = apply_all(
        book,
        fill("f1", BUY, "1", "100"),
        fill("f2", BUY, "2", "100.00000001", fee="0.12000001"),
        fill("f3", SELL, "0.5", "99999.99999999"),
        fill("f4", SELL, "4", "0.00000001", fee="-0.00000001"),
    )
    schema = fastavro.parse_schema(json.loads(avsc.schema_str("PositionChanged")))
    for event in events:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema, codec.to_avro(event))
        buffer.seek(0)
        record = fastavro.schemaless_reader(buffer, schema, schema)
        assert isinstance(record, dict)
        assert repr(codec.from_avro(PositionChanged, record)) == repr(event)


# --- refusals -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (fill("f2", SELL, "1", "100", account_id="acc-8"), "not 'acc-7'"),
        (fill("f2", SELL, "0", "100"), "not positive"),
        (fill("f2", SELL, "-1", "100"), "not positive"),
        (fill("f2", SELL, "0.000000001", "100"), "more than 8 decimal places"),
        (fill("f2", SELL, "1", "100.123456789"), "more than 8 decimal places"),
        (fill("f2", SELL, "1", "NaN"), "not a finite decimal"),
        (fill("f2", SELL, "1", "100", fee="Infinity"), "not a finite decimal"),
        (fill("f2", SELL, "1", "1E+25"), "more than 20 integer digits"),
        (fill("f2", SELL, "1", "100", fee_currency="BNB"), "summed in 'USDT'"),
    ],
)
def test_a_fill_that_cannot_be_applied_is_refused_with_the_reason_and_the_book_is_unchanged(
    bad: OrderFilled, reason: str
) -> None:
    book = PositionBook(ACCOUNT)
    apply_all(book, fill("f1", BUY, "2", "100"))
    before = book.to_snapshot()
    with pytest.raises(InvalidFillError, match=reason):
        book.apply_fill(bad)
    assert book.to_snapshot() == before
    after = book.apply_fill(fill("f2", SELL, "1", "100"))  # the refused fill's id was not taken, nor its sequence
    assert after is not None and after.envelope.sequence == 2


def test_trailing_zeros_past_8_places_are_not_extra_places() -> None:
    book = PositionBook(ACCOUNT)
    event = book.apply_fill(fill("f1", BUY, "1.0000000000", "100.000000000"))
    assert event is not None and state(event)[:2] == ("1.00000000", "100.00000000")
