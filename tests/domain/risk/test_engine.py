"""The engine as its host sees it: how derived events are stamped, how cancels and ticks are taken, what it refuses."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.derive import UNTRACKED, derived_envelope
from domain.risk import NotARiskInputError, Reference, RiskLimitsError
from schemas.events import AmendAccepted, CancelAccepted, OrderAccepted, TickIngested
from tests.domain.risk.scenario import (
    LIMITS,
    amend,
    cancel,
    engine,
    feed,
    limits,
    placed,
    price_tick,
    quotes,
    tick,
)
from tests.support import events as build

D = Decimal
MS = timedelta(milliseconds=1)
Q = quotes()[0]


def test_each_order_s_events_are_numbered_in_its_own_stream_and_caused_by_their_trigger() -> None:
    risk = engine()
    feed(risk, [tick(Q)])
    first, second = placed(1, Q.at + MS), placed(2, Q.at + 2 * MS)
    change = amend("ord-1", Q.at + 3 * MS, new_quantity=D("0.3"))
    cancelling = cancel("ord-1", Q.at + 4 * MS)

    out = feed(risk, [first, second, change, cancelling])

    assert [(type(e), e.envelope) for e in out] == [
        (OrderAccepted, derived_envelope(OrderAccepted, first, "ord-1", 1)),
        (OrderAccepted, derived_envelope(OrderAccepted, second, "ord-2", 1)),
        (AmendAccepted, derived_envelope(AmendAccepted, change, "ord-1", 2)),
        (CancelAccepted, derived_envelope(CancelAccepted, cancelling, "ord-1", 3)),
    ]
    assert out[3].envelope.causation_id == str(cancelling.envelope.event_id)
    assert out[3].envelope.occurred_at == cancelling.envelope.occurred_at
    assert len({e.envelope.event_id for e in out}) == 4


def test_a_cancel_is_forwarded_even_for_an_order_risk_does_not_know() -> None:
    request = cancel("ord-unknown", Q.at, instrument="XBTUSD", reason=None)

    # Numbered from the request, not from 1: risk holds no count of this order's stream, and 1 may be taken there.
    assert engine().handle(request) == [
        CancelAccepted(
            envelope=derived_envelope(CancelAccepted, request, "ord-unknown", UNTRACKED + request.envelope.sequence),
            order_id="ord-unknown",
            account_id="acc-7",
            instrument="XBTUSD",
            reason=None,
        )
    ]


def test_a_cancel_goes_to_the_instrument_the_order_trades() -> None:
    risk = engine()
    feed(risk, [tick(Q), placed(1, Q.at + MS)])

    [forwarded] = risk.handle(cancel("ord-1", Q.at + 2 * MS, instrument="ETHUSDT"))

    assert isinstance(forwarded, CancelAccepted) and forwarded.instrument == "BTCUSDT"


def test_the_reference_is_the_mid_else_the_last_price_at_the_tick_s_event_time() -> None:
    risk = engine()
    later = Q.at + 10 * MS

    feed(risk, [tick(Q)])
    mid = risk.references["BTCUSDT"]
    feed(risk, [price_tick("BTCUSDT", "39440.10", later)])
    last = risk.references["BTCUSDT"]
    feed(risk, [build.tick_ingested(envelope=build.envelope(TickIngested, occurred_at=later), bid=None, last=None)])
    one_sided = risk.references["BTCUSDT"]

    assert mid == Reference(D("39433.305"), Q.at)
    assert last == Reference(D("39440.10"), later)
    assert one_sided == last  # a bid-less tick with no last price is no reference: the last one stands


def test_an_older_tick_does_not_replace_a_newer_reference_and_unknown_instruments_are_not_kept() -> None:
    risk = engine()
    newest, older = quotes()[5], quotes()[4]

    feed(risk, [tick(newest), tick(older), price_tick("DOGEUSDT", "0.01", newest.at)])

    assert risk.references == {"BTCUSDT": Reference(newest.mid, newest.at)}


def test_limits_replace_the_defaults_for_their_account_only() -> None:
    risk = engine()
    feed(risk, [tick(Q), limits(Q.at, max_order_quantity=D("0.1"))])

    [own] = risk.handle(placed(1, Q.at + MS))
    [other] = risk.handle(placed(2, Q.at + MS, account_id="acc-8"))

    assert getattr(own, "reason_code", None) == "MAX_ORDER_QUANTITY"
    assert isinstance(other, OrderAccepted)
    assert risk.limits_of(risk.accounts["acc-8"]) == LIMITS


def test_limits_out_of_range_are_refused_and_the_old_ones_stay() -> None:
    risk = engine()
    feed(risk, [limits(Q.at, max_order_quantity=D(2))])

    with pytest.raises(RiskLimitsError, match="max_orders_per_second must be positive, got 0"):
        risk.handle(limits(Q.at, max_order_quantity=D(3), max_orders_per_second=0))

    assert risk.limits_of(risk.accounts["acc-7"]).max_order_quantity == D(2)


@pytest.mark.parametrize("event", [build.order_accepted(), build.order_rejected(), build.signal_generated()])
def test_what_risk_does_not_read_is_refused_by_name(event: object) -> None:
    risk = engine()
    with pytest.raises(NotARiskInputError, match=type(event).__name__):
        risk.handle(event)  # type: ignore[arg-type]


def test_a_cancel_the_venue_refused_changes_nothing() -> None:
    risk = engine()
    before = risk.to_snapshot()

    assert risk.handle(build.cancel_rejected()) == []
    assert risk.to_snapshot() == before


def test_a_tick_from_the_future_never_makes_later_orders_stale() -> None:
    """Issue 12, F4: the reference is the latest tick at or before the order's event time. A tick stamped ten
    minutes ahead (recorded now) must not become the reference of the orders placed before that time."""
    risk = engine()
    future = price_tick("BTCUSDT", "39433.10", Q.at + timedelta(minutes=10))
    future = dataclasses.replace(future, envelope=dataclasses.replace(future.envelope, recorded_at=Q.at))
    feed(risk, [tick(Q), future])

    [before_fresh] = risk.handle(placed(1, Q.at + MS))
    feed(risk, [price_tick("BTCUSDT", "39433.20", Q.at + 2 * MS)])
    [after_fresh] = risk.handle(placed(2, Q.at + 3 * MS))

    assert isinstance(before_fresh, OrderAccepted), getattr(before_fresh, "reason", before_fresh)
    assert isinstance(after_fresh, OrderAccepted), getattr(after_fresh, "reason", after_fresh)
    [late] = risk.handle(placed(3, Q.at + timedelta(minutes=10, milliseconds=1)))
    assert isinstance(late, OrderAccepted)  # by then the future tick is the latest at or before the order


def test_the_references_risk_keeps_stay_bounded() -> None:
    risk = engine()
    for n in range(2000):
        feed(risk, [price_tick("BTCUSDT", "39433.10", Q.at + n * MS)])
    snapshot = risk.to_snapshot()
    assert len(snapshot) < 10_000, "ticks in the present replace each other; only what an order may need is kept"
