"""The kill switch: engaging it cancels exactly the account's working orders and blocks anything new until release."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain.derive import derived_envelope
from domain.risk import KILL_SWITCH_REASON
from schemas.events import CancelAccepted, OrderAccepted, OrderRejected, Side
from tests.domain.risk.scenario import (
    amend,
    cancel,
    cancelled,
    engine,
    expired,
    feed,
    filled,
    kill_switch,
    placed,
    quotes,
    tick,
)

MS = timedelta(milliseconds=1)
Q = quotes()[0]


def at(ms: int) -> timedelta:
    return ms * MS


def test_engaging_cancels_exactly_the_working_orders_in_the_order_they_were_accepted() -> None:
    risk = engine()
    t = Q.at
    decisions = feed(
        risk,
        [
            tick(Q),
            placed(1, t + at(10)),
            placed(2, t + at(20), side=Side.SELL),
            placed(3, t + at(30)),
            placed(4, t + at(40)),
            placed(5, t + at(50), quantity=Decimal(9)),  # rejected: never working
            placed(6, t + at(60), account_id="acc-8"),  # another account's
            filled("ord-1", t + at(70), quantity="0.1", leaves="0.15"),  # partly filled: still working
            filled("ord-3", t + at(80), quantity="0.25", leaves="0"),  # done
            cancelled("ord-2", t + at(90)),  # done
        ],
    )
    assert [type(d) for d in decisions] == [OrderAccepted] * 4 + [OrderRejected, OrderAccepted]

    engage = kill_switch(True, t + at(100))
    cancels = risk.handle(engage)

    assert cancels == [
        CancelAccepted(
            envelope=derived_envelope(CancelAccepted, engage, order_id, 2),
            order_id=order_id,
            account_id="acc-7",
            instrument="BTCUSDT",
            reason=KILL_SWITCH_REASON,
        )
        for order_id in ("ord-1", "ord-4")
    ]


def test_while_engaged_new_orders_and_amends_are_rejected_and_cancels_still_go_through() -> None:
    risk = engine()
    t = Q.at
    feed(risk, [tick(Q), placed(1, t + at(10)), kill_switch(True, t + at(20))])

    [order] = risk.handle(placed(2, t + at(30)))
    [change] = risk.handle(amend("ord-1", t + at(40), new_quantity=Decimal("0.1")))
    [cancelling] = risk.handle(cancel("ord-1", t + at(50)))

    assert isinstance(order, OrderRejected) and order.reason_code == "KILL_SWITCH"
    assert change.envelope.event_type == "AmendRejected" and getattr(change, "reason_code", None) == "KILL_SWITCH"
    assert isinstance(cancelling, CancelAccepted) and cancelling.reason == "changed my mind"


def test_release_lets_orders_through_again() -> None:
    risk = engine()
    t = Q.at
    feed(risk, [tick(Q), kill_switch(True, t + at(10))])
    [blocked] = risk.handle(placed(1, t + at(20)))

    released = risk.handle(kill_switch(False, t + at(30)))
    [through] = risk.handle(placed(2, t + at(40)))

    assert isinstance(blocked, OrderRejected) and blocked.reason_code == "KILL_SWITCH"
    assert released == []
    assert isinstance(through, OrderAccepted)


def test_engaging_with_nothing_working_cancels_nothing_and_engaging_again_cancels_what_still_works() -> None:
    risk = engine()
    t = Q.at
    assert risk.handle(kill_switch(True, t)) == []
    feed(risk, [kill_switch(False, t + at(1)), tick(Q), placed(1, t + at(10)), placed(2, t + at(20))])

    first = risk.handle(kill_switch(True, t + at(30)))
    feed(risk, [expired("ord-2", t + at(40))])
    again = risk.handle(kill_switch(True, t + at(50)))

    assert [c.order_id for c in first if isinstance(c, CancelAccepted)] == ["ord-1", "ord-2"]
    # The venue had not yet cancelled ord-1: it is cancelled again (harmless; the venue is the authority).
    assert [(c.order_id, c.envelope.sequence) for c in again if isinstance(c, CancelAccepted)] == [("ord-1", 3)]
