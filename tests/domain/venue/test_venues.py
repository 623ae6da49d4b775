"""``Venues``: one venue per instrument behind one ``handle``, one ``Sequences`` for all; and what a venue refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.derive import UNTRACKED
from domain.instruments import InstrumentRegistry
from domain.venue.errors import (
    DuplicateOrderError,
    InvalidOrderError,
    UnknownInstrumentError,
    WrongInstrumentError,
)
from domain.venue.venues import Venues
from schemas.events import CancelRejected, Event, OrderCancelled, OrderFilled, OrderType, Side, TimeInForce
from tests.domain.venue import market as m
from tests.support import events as examples

INSTRUMENTS = InstrumentRegistry.from_file()


def xbtusd_tick() -> Event:
    """A quote without sizes: no limit on what trades against it."""
    return examples.tick_ingested(
        instrument="XBTUSD", bid=Decimal("8500.0"), ask=Decimal("8500.5"), bid_size=None, ask_size=None, last=None
    )


def test_each_event_goes_to_the_venue_of_its_instrument_made_on_first_use() -> None:
    venues = Venues(INSTRUMENTS, m.CONFIG)
    assert len(venues) == 0

    venues.handle(m.quote_ticks()[0])
    venues.handle(xbtusd_tick())
    (fill,) = venues.handle(
        examples.order_accepted(
            instrument="XBTUSD",
            quantity=Decimal("10"),
            limit_price=None,
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC,
        )
    )

    assert set(venues) == {"BTCUSDT", "XBTUSD"}
    assert isinstance(fill, OrderFilled) and fill.instrument == "XBTUSD" and fill.fee_currency == "USD"
    assert (fill.fill_quantity, fill.is_final) == (Decimal(10), True)
    assert venues["BTCUSDT"].book.touch.ask is not None
    assert venues["BTCUSDT"].book.touch.ask.price == m.quote(0)["ask"]


def test_events_the_venues_do_not_act_on_derive_nothing() -> None:
    venues = Venues(INSTRUMENTS, m.CONFIG)
    for event in (
        examples.order_rejected(),
        examples.amend_rejected(),
        examples.order_placed(),
        examples.order_filled(),
    ):
        assert venues.handle(event) == []
    assert len(venues) == 0


def test_an_unknown_instrument_is_refused_naming_the_known_ones() -> None:
    venues = Venues(INSTRUMENTS, m.CONFIG)
    with pytest.raises(UnknownInstrumentError, match="'DOGEUSDT'") as err:
        venues.handle(examples.tick_ingested(instrument="DOGEUSDT"))
    assert "BTCUSDT" in str(err.value)


def test_a_venue_refuses_another_instruments_event() -> None:
    with pytest.raises(WrongInstrumentError, match="TickIngested for XBTUSD reached the venue of BTCUSDT"):
        m.venue().handle(xbtusd_tick())


def test_the_venues_share_one_sequence_per_order_so_event_ids_never_repeat() -> None:
    venues = Venues(INSTRUMENTS, m.CONFIG)
    venues.handle(m.accepted("ord-1", Side.BUY, "1", limit=Decimal(30000), at=datetime(2021, 1, 8, tzinfo=UTC)))
    first = examples.cancel_accepted(order_id="ord-1", instrument="XBTUSD")
    (on_xbt,) = venues.handle(first)  # sent to the wrong instrument: XBTUSD's venue does not know it
    (on_btc,) = venues.handle(replace(first, envelope=replace(first.envelope, sequence=2), instrument="BTCUSDT"))

    assert isinstance(on_xbt, CancelRejected) and isinstance(on_btc, OrderCancelled)
    assert (on_xbt.envelope.sequence, on_btc.envelope.sequence) == (1, 2)
    assert on_btc.envelope.event_id != on_xbt.envelope.event_id


def test_answers_about_an_order_neither_risk_nor_the_venues_hold_are_numbered_from_the_request() -> None:
    venues = Venues(INSTRUMENTS, m.CONFIG)
    first = examples.cancel_accepted(order_id="lost")
    first = replace(first, envelope=replace(first.envelope, sequence=UNTRACKED + 2))  # risk holds no count either
    second = replace(first, envelope=replace(first.envelope, sequence=UNTRACKED + 3), instrument="XBTUSD")

    answers = [*venues.handle(first), *venues.handle(second)]

    # From 1, they could take the event ids of the reports of an order the venue forgot.
    assert [a.envelope.sequence for a in answers] == [2 * UNTRACKED + 2, 2 * UNTRACKED + 3]
    assert not venues.sequences.last


def test_the_venues_snapshot_round_trips_mid_stream() -> None:
    events: list[Event] = [
        *m.quote_ticks()[:50],
        xbtusd_tick(),
        m.accepted("rest", Side.BUY, "1", limit=m.quote(49)["bid"] - 10, at=m.quote(49)["ts"]),
        examples.order_accepted(
            order_id="x-rest", instrument="XBTUSD", quantity=Decimal("10"), limit_price=Decimal("8400.0")
        ),
        *m.quote_ticks()[50:],
        examples.cancel_accepted(order_id="x-rest", instrument="XBTUSD"),
    ]
    cut = 60
    whole = Venues(INSTRUMENTS, m.CONFIG)
    expected = [d for e in events for d in whole.handle(e)]

    before = Venues(INSTRUMENTS, m.CONFIG)
    derived = [d for e in events[:cut] for d in before.handle(e)]
    after = Venues.from_snapshot(before.to_snapshot(), INSTRUMENTS, m.CONFIG)
    assert after.to_snapshot() == before.to_snapshot()
    assert after["BTCUSDT"].sequences is after.sequences is after["XBTUSD"].sequences
    derived += [d for e in events[cut:] for d in after.handle(e)]

    assert derived == expected
    assert after.to_snapshot() == whole.to_snapshot()


def test_an_order_accepted_twice_or_not_workable_is_refused() -> None:
    venue = m.venue()
    venue.handle(examples.order_accepted())
    with pytest.raises(DuplicateOrderError):
        venue.handle(examples.order_accepted())
    with pytest.raises(InvalidOrderError, match="without a limit price"):
        venue.handle(examples.order_accepted(order_id="no-price", limit_price=None))
    with pytest.raises(InvalidOrderError, match="not above zero"):
        venue.handle(examples.order_accepted(order_id="empty", quantity=Decimal("0")))


def test_live_instruments_are_left_to_the_live_venue() -> None:
    venues = Venues(INSTRUMENTS, m.CONFIG.model_copy(update={"live_instruments": frozenset({"BTCUSDT"})}))
    assert venues.handle(m.quote_ticks()[0]) == []
    assert venues.handle(examples.order_accepted(order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC)) == []
    assert len(venues) == 0, "no simulated book for a live instrument"
    venues.handle(xbtusd_tick())
    assert list(venues) == ["XBTUSD"]
