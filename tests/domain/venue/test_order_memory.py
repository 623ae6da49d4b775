"""The venue's order memory: finished orders leave its state an order memory (event time) after they finished."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

from domain.derive import UNTRACKED
from domain.lifecycle import ORDER_MEMORY
from domain.venue.venue import SimulatedVenue
from schemas.events import CancelRejected, Event, OrderCancelled, OrderFilled, Side, TickIngested, TimeInForce
from tests.domain.venue import market as m

QUOTE = m.quote_ticks()[0]
APART = timedelta(days=2)  # beyond the venue's memory (a day and an hour)


def moved(tick: TickIngested, by: timedelta) -> TickIngested:
    envelope = tick.envelope
    return replace(tick, envelope=replace(envelope, occurred_at=envelope.occurred_at + by), exchange_ts=None)


def days_of_orders(days: int, per_day: int = 20) -> Iterator[Event]:
    """Every other day a quote, then ``per_day`` MARKET orders that fill at once and a resting bid that is cancelled."""
    for day in range(days):
        tick = moved(QUOTE, day * APART)
        at = tick.envelope.occurred_at
        yield tick
        for i in range(per_day):
            yield m.accepted(f"mkt-{day:04d}-{i:02d}", Side.BUY, "0.001", at=at, tif=TimeInForce.IOC)
        yield m.accepted(f"bid-{day:04d}", Side.BUY, "0.001", limit="1000", at=at)
        yield m.cancel(f"bid-{day:04d}", at=at)


def test_the_venue_forgets_finished_orders_so_its_state_does_not_grow_with_them() -> None:
    one, fifty = m.venue(), m.venue()
    m.run(one, days_of_orders(1))
    fifty_days = m.run(fifty, days_of_orders(50))

    assert len(m.of_type(fifty_days, OrderFilled)) == 50 * 20 and len(m.of_type(fifty_days, OrderCancelled)) == 50
    assert len(fifty.to_snapshot()) <= 1.02 * len(one.to_snapshot())
    assert len(fifty.book.done) == 21  # the last day's orders: nothing of the 49 days before
    assert set(fifty.sequences.last) == {f"mkt-0049-{i:02d}" for i in range(20)} | {"bid-0049"}


def test_a_late_cancel_hears_how_the_order_ended_while_remembered_and_unknown_order_after() -> None:
    venue = m.venue()
    m.run(venue, days_of_orders(1))
    filled_at = QUOTE.envelope.occurred_at
    soon = m.cancel("mkt-0000-00", at=filled_at + ORDER_MEMORY - timedelta(seconds=1))
    # The venue keeps finished orders an hour a day longer than risk; by then risk numbers from the request too.
    after = filled_at + ORDER_MEMORY * (1 + 1 / 24) + timedelta(seconds=1)
    late = m.cancel("mkt-0000-00", at=after, sequence=UNTRACKED + 3)
    never = m.cancel("never-seen", at=after + timedelta(seconds=1), sequence=UNTRACKED + 2)

    (remembered,) = venue.handle(soon)
    (forgotten,) = venue.handle(late)
    (unknown,) = venue.handle(never)

    assert isinstance(remembered, CancelRejected) and remembered.reason == "order already filled"
    assert remembered.envelope.sequence == 2  # its fill was 1
    # Forgotten, it is answered as an order the venue never saw: refused, unknown, and numbered from the request
    # (above any count the venue keeps), so the answer does not take the event id of the order's fill.
    assert isinstance(forgotten, CancelRejected) and isinstance(unknown, CancelRejected)
    assert (forgotten.reason, unknown.reason) == ("unknown order", "unknown order")
    assert (forgotten.envelope.sequence, unknown.envelope.sequence) == (2 * UNTRACKED + 3, 2 * UNTRACKED + 2)


def test_a_cancel_of_an_order_risk_refused_is_counted_from_1_and_forgotten_after_the_memory() -> None:
    venue = m.venue()
    at = QUOTE.envelope.occurred_at
    answers = m.run(venue, [m.cancel("refused", at=at), m.cancel("refused", at=at, sequence=3)])

    assert [(a.reason, a.envelope.sequence) for a in answers] == [("unknown order", 1), ("unknown order", 2)]
    m.run(venue, [m.accepted("later", Side.BUY, "0.001", at=at + 2 * ORDER_MEMORY, limit="1000")])
    assert "refused" not in venue.sequences.last and not venue.book.answered


def test_ticks_dated_far_ahead_forget_nothing() -> None:
    venue = m.venue()
    m.run(venue, days_of_orders(1))

    m.run(venue, [moved(QUOTE, 10 * ORDER_MEMORY), m.cancel("bid-none", at=QUOTE.envelope.occurred_at)])

    assert len(venue.book.done) == 21


def test_forgetting_is_the_same_from_a_snapshot_as_in_one_pass() -> None:
    history = list(days_of_orders(4))
    half = len(history) // 2
    whole, first = m.venue(), m.venue()
    whole_out = m.run(whole, history)
    first_out = m.run(first, history[:half])
    restored = SimulatedVenue.from_snapshot(first.to_snapshot(), m.BTCUSDT, m.CONFIG)

    assert first_out + m.run(restored, history[half:]) == whole_out
    assert restored.to_snapshot() == whole.to_snapshot()
