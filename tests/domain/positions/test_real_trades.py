"""PositionBook over fills made from real recorded trades, checked against an independent fold and the cash identity.

Scenarios: Binance BTCUSDT (2,001 trades) and Bitmex XBTUSD (10 trades, replayed 40 times), with the trades' own
sides and sizes, and with seeded random sides and sizes that make the position go flat and cross zero often.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import fastavro
import polars as pl
import pytest

from domain.positions import PositionBook
from schemas import avsc, codec
from schemas.events import OrderFilled, PositionChanged
from tests.domain.positions import reference, trades
from tests.domain.positions.reference import units

SCENARIOS: dict[str, Callable[[], list[OrderFilled]]] = {
    "binance-own-sides": lambda: trades.fills("BTCUSDT", trades.binance_btcusdt()),
    "binance-seed-1": lambda: trades.fills("BTCUSDT", trades.binance_btcusdt(), seed=1),
    "binance-seed-2": lambda: trades.fills("BTCUSDT", trades.binance_btcusdt(), seed=2),
    "bitmex-own-sides": lambda: trades.fills("XBTUSD", trades.bitmex_xbtusd()),
    "bitmex-seed-1": lambda: trades.fills("XBTUSD", trades.bitmex_xbtusd(), seed=1, rounds=40),
    "bitmex-seed-2": lambda: trades.fills("XBTUSD", trades.bitmex_xbtusd(), seed=2, rounds=40),
}
scenario = pytest.mark.parametrize("name", SCENARIOS)


@functools.cache
def fills_of(name: str) -> list[OrderFilled]:
    return SCENARIOS[name]()


@functools.cache
def replayed(name: str) -> tuple[list[PositionChanged], PositionBook]:
    """The events of a scenario and the book after it; shared by the tests, which must not change the book."""
    book = PositionBook(trades.ACCOUNT)
    return run(book, fills_of(name)), book


def events_of(name: str) -> list[PositionChanged]:
    return replayed(name)[0]


def run(book: PositionBook, fills: Iterable[OrderFilled]) -> list[PositionChanged]:
    return [event for event in map(book.apply_fill, fills) if event is not None]


@scenario
def test_the_scenario_exercises_what_the_properties_are_about(name: str) -> None:
    quantities = [e.quantity for e in events_of(name)]
    assert len(quantities) == len(fills_of(name))
    if "seed" in name:  # the trades' own sides may well never close anything (the Bitmex ten are all sells)
        crossings = sum(1 for a, b in itertools.pairwise(quantities) if a * b < 0)
        flats = sum(1 for q in quantities if q == 0)
        assert flats >= 20 and crossings >= 20, (flats, crossings)
        realized = {e.realized_pnl for e in events_of(name)}
        if len({f.fill_price for f in fills_of(name)}) == 1:
            assert realized == {0}  # the Bitmex ten all traded at 8531.5: trading at one price realizes nothing
        else:
            assert len(realized) >= 40


@scenario
def test_every_event_agrees_with_an_independent_integer_fold(name: str) -> None:
    steps = reference.fold(reference.frame(fills_of(name)))
    for event, step in zip(events_of(name), steps, strict=True):
        assert units(event.quantity) == step.quantity
        assert units(event.average_price) == step.average
        assert units(event.realized_pnl) == step.published_realized
        assert units(event.fees_paid) == step.fees


@scenario
def test_final_quantity_and_fees_are_the_sums_of_the_fill_columns(name: str) -> None:
    frame = reference.frame(fills_of(name))
    totals = frame.select(pl.col("quantity").sum(), pl.col("fee").sum()).row(0)
    last = events_of(name)[-1]
    assert (units(last.quantity), units(last.fees_paid)) == totals


@scenario
def test_realized_increments_over_time_add_up_to_the_final_realized_pnl(name: str) -> None:
    events = events_of(name)
    written = [Decimal(0)] + [e.realized_pnl for e in events]
    increments = [after - before for before, after in itertools.pairwise(written)]
    assert sum(increments, Decimal(0)) == events[-1].realized_pnl

    # Exactly, before rounding: the fold's per-fill increments (cash identity) sum to the book's exact figure.
    steps = reference.fold(reference.frame(fills_of(name)))
    exact = [0] + [s.realized for s in steps]
    final = replayed(name)[1].position(events[-1].instrument).realized_pnl
    assert sum(b - a for a, b in itertools.pairwise(exact)) == units(final, 10**16)

    # A fill that only opens or adds to a position realizes nothing.
    for before, after, increment in zip([Decimal(0), *(e.quantity for e in events)], events, increments, strict=False):
        if before == 0 or (before > 0) == (after.quantity > before):
            assert increment == 0


@scenario
def test_whenever_flat_the_realized_pnl_is_the_net_cash_of_the_trades(name: str) -> None:
    cash = (
        reference.frame(fills_of(name))
        .select((pl.lit(0, pl.Int128) - pl.col("quantity").cast(pl.Int128) * pl.col("price")).cum_sum())
        .to_series()
        .to_list()
    )
    flat = [(e, c) for e, c in zip(events_of(name), cash, strict=True) if e.quantity == 0]
    for event, cash_so_far in flat:
        assert units(event.realized_pnl) == reference.half_even(cash_so_far, reference.UNIT)


@scenario
def test_the_same_fills_derive_byte_identical_events(name: str) -> None:
    again = run(PositionBook(trades.ACCOUNT), fills_of(name))
    assert again == events_of(name)
    assert [avro_bytes(e) for e in again] == [avro_bytes(e) for e in events_of(name)]


@scenario
@pytest.mark.parametrize("cut", [0.0, 0.37, 0.5, 0.999])
def test_a_book_snapshotted_mid_stream_and_restored_carries_on_identically(name: str, cut: float) -> None:
    fills = fills_of(name)
    at = int(len(fills) * cut)
    first = PositionBook(trades.ACCOUNT)
    before = run(first, fills[:at])
    snapshot = first.to_snapshot()
    restored = PositionBook.from_snapshot(snapshot)
    assert restored.to_snapshot() == snapshot
    after = run(restored, fills[at:])
    assert before + after == events_of(name)
    assert restored.to_snapshot() == replayed(name)[1].to_snapshot()


@scenario
def test_redelivered_fills_change_nothing(name: str) -> None:
    fills = fills_of(name)
    half = len(fills) // 2
    # Every fill twice, then the first half again, as an at-least-once consumer restarting from an old offset would.
    redelivered = [f for fill in fills for f in (fill, fill)] + fills[:half]
    assert run(PositionBook(trades.ACCOUNT), redelivered) == events_of(name)


def test_one_book_keeps_each_instrument_apart() -> None:
    btc, xbt = fills_of("binance-seed-1"), fills_of("bitmex-seed-1")
    interleaved = [f for pair in zip(btc, xbt, strict=False) for f in pair] + btc[len(xbt) :]
    events = run(PositionBook(trades.ACCOUNT), interleaved)
    assert [e for e in events if e.instrument == "BTCUSDT"] == events_of("binance-seed-1")
    assert [e for e in events if e.instrument == "XBTUSD"] == events_of("bitmex-seed-1")


@functools.cache
def position_changed_schema() -> Any:
    return fastavro.parse_schema(json.loads(avsc.schema_str("PositionChanged")))


def avro_bytes(event: PositionChanged) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, position_changed_schema(), codec.to_avro(event))
    return buffer.getvalue()
