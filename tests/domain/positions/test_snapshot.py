"""PositionBook snapshots: deterministic JSON bytes that read back into a book that carries on exactly the same."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from domain.positions import PositionBook, SnapshotError
from schemas.events import Side
from tests.domain.positions.test_book import ACCOUNT, BTC, apply_all, fill

BUY, SELL = Side.BUY, Side.SELL


def traded_book() -> PositionBook:
    book = PositionBook(ACCOUNT)
    apply_all(
        book,
        fill("f1", BUY, "1", "100", fee="0.04"),
        fill("f2", BUY, "2", "100.00000001", fee="0.08"),  # leaves a rounding residue in the cost basis
        fill("f3", SELL, "0.5", "0.00000004"),  # realizes 0.5 * -99.99999997, more than 8 places
        fill("x1", SELL, "250", "8500.5", instrument="XBTUSD", fee_currency="USD"),
    )
    return book


def test_an_empty_book_round_trips() -> None:
    data = PositionBook(ACCOUNT).to_snapshot()
    assert data == b'{"account_id":"acc-7","format":1,"positions":[],"sequences":{}}'
    assert PositionBook.from_snapshot(data).to_snapshot() == data


def test_a_book_round_trips_exactly_residue_and_unrounded_realized_pnl_included() -> None:
    book = traded_book()
    data = book.to_snapshot()
    back = PositionBook.from_snapshot(data)
    assert back.to_snapshot() == data
    assert back.account_id == ACCOUNT
    assert dict(back.positions) == dict(book.positions)
    assert repr(back.position(BTC)) == repr(book.position(BTC))  # same exponents, not just equal values
    assert back.position(BTC).realized_pnl == Decimal("-49.999999985")


def test_the_snapshot_is_deterministic_json_with_sorted_ids_and_decimals_as_strings() -> None:
    assert traded_book().to_snapshot() == traded_book().to_snapshot()
    document = json.loads(traded_book().to_snapshot())
    btc = document["positions"][0]
    assert btc == {
        "instrument": BTC,
        "quantity": "2.50000000",
        "average_price": "100.00000001",
        "cost_basis": "250.0000000150000000",
        "realized_pnl": "-49.9999999850000000",
        "fees_paid": "0.12000000",
        "fee_currency": "USDT",
        "fill_ids": ["f1", "f2", "f3"],
    }
    assert document["sequences"] == {f"{ACCOUNT}/{BTC}": 3, f"{ACCOUNT}/XBTUSD": 1}


def test_a_restored_book_carries_on_as_the_original_would() -> None:
    original = traded_book()
    restored = PositionBook.from_snapshot(original.to_snapshot())
    for book in (original, restored):
        assert book.apply_fill(fill("f2", BUY, "2", "100.00000001")) is None  # still a duplicate
    next_fill = fill("f4", SELL, "3", "101")
    assert restored.apply_fill(next_fill) == original.apply_fill(next_fill)
    assert restored.to_snapshot() == original.to_snapshot()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"[]",
        b'{"format":2,"account_id":"acc-7","positions":[],"sequences":{}}',
        b'{"format":1,"positions":[],"sequences":{}}',
        b'{"format":1,"account_id":7,"positions":[],"sequences":{}}',
        b'{"format":1,"account_id":"acc-7","positions":[{"instrument":"BTCUSDT"}],"sequences":{}}',
        b'{"format":1,"account_id":"acc-7","positions":[],"sequences":{"acc-7/BTCUSDT":0}}',
        b'{"format":1,"account_id":"acc-7","positions":[],"sequences":{"acc-7/BTCUSDT":true}}',
    ],
)
def test_bytes_that_are_not_a_snapshot_are_refused(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        PositionBook.from_snapshot(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", "abc"), ("cost_basis", "NaN"), ("fees_paid", 1.5), ("fill_ids", [1]), ("fill_ids", "f1")],
)
def test_a_snapshot_with_a_field_of_the_wrong_kind_is_refused_naming_the_field(field: str, value: object) -> None:
    document = json.loads(traded_book().to_snapshot())
    document["positions"][0][field] = value
    with pytest.raises(SnapshotError, match=field):
        PositionBook.from_snapshot(json.dumps(document).encode())
