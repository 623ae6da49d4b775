"""Amends are checked again, as the order would stand after them; until the venue confirms one, the order counts at
the larger of before and after."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.derive import derived_envelope
from domain.risk import AMEND_CHECKS, RiskEngine
from schemas.events import (
    AmendAccepted,
    AmendRejected,
    Event,
    OrderAccepted,
    OrderAmendRejected,
    OrderRejected,
    OrderType,
    TimeInForce,
)
from tests.domain.risk.scenario import (
    amend,
    amended,
    engine,
    feed,
    filled,
    limits,
    placed,
    position,
    quotes,
    tick,
)
from tests.support import events as build

D = Decimal
MS = timedelta(milliseconds=1)
Q = quotes()[0]  # mid 39433.305
T = Q.at + 100 * MS


S = Q.at + 20 * MS


def working(*then: Event) -> RiskEngine:
    """An engine holding ord-1 open — a limit buy of 0.25 at 39433.00 placed 10 ms after the first quote — that has
    then seen ``then``."""
    risk = engine()
    [decision] = feed(risk, [tick(Q), placed(1, Q.at + 10 * MS)])
    assert isinstance(decision, OrderAccepted)
    feed(risk, then)
    return risk


def test_an_amend_within_limits_is_accepted_and_stamped_as_the_order_s_next_event() -> None:
    risk = working()
    request = amend("ord-1", T, new_quantity=D("0.5"), new_limit_price=D("39430.00"))

    assert risk.handle(request) == [
        AmendAccepted(
            envelope=derived_envelope(AmendAccepted, request, "ord-1", 2),
            order_id="ord-1",
            account_id="acc-7",
            instrument="BTCUSDT",
            new_quantity=D("0.5"),
            new_limit_price=D("39430.00"),
        )
    ]


@pytest.mark.parametrize(
    ("then", "change", "mentions"),
    [
        pytest.param((), {"new_quantity": D("0.0000015")}, "lot size", id="QUANTITY"),
        pytest.param((), {"new_limit_price": D("39430.005")}, "tick size", id="PRICE"),
        pytest.param((), {"new_quantity": D("5.5")}, "max_order_quantity 5.00000000", id="MAX_ORDER_QUANTITY"),
        pytest.param((), {"new_limit_price": D("41404.98")}, "price_collar_bps 500", id="PRICE_COLLAR"),
        pytest.param(
            (limits(S, max_order_notional=D(10_000)),),
            {"new_quantity": D("0.26")},
            "notional 10252.58000000",
            id="MAX_ORDER_NOTIONAL",
        ),
        pytest.param(
            (position(S, quantity="19.5", realized="0"),),
            {"new_quantity": D("0.6")},
            "would be 20.10000000",
            id="MAX_POSITION",
        ),
        pytest.param(
            (limits(S, max_open_notional=D(10_000)),),
            {"new_limit_price": D("40000.01")},
            "= 10000.00250000 exceeds max_open_notional 10000.00000000",
            id="MAX_OPEN_NOTIONAL",
        ),
        pytest.param(
            (position(S, quantity="0", realized="-60000"),),
            {"new_quantity": D("0.3")},
            "-60000.00000000 USDT",
            id="DAILY_LOSS_LIMIT",
        ),
    ],
)
def test_the_amended_order_is_checked_again(
    then: tuple[Event, ...], change: dict[str, Decimal], mentions: str, request: pytest.FixtureRequest
) -> None:
    code = request.node.callspec.id
    risk = working(*then)

    [decision] = risk.handle(amend("ord-1", T, **change))

    assert isinstance(decision, AmendRejected), decision
    assert decision.reason_code == code
    assert mentions in decision.reason
    number = [c for c, _ in AMEND_CHECKS].index(code) + 1
    assert decision.reason.endswith(f"(check {number} of {len(AMEND_CHECKS)} failed; checks stop at the first failure)")


def test_an_amend_that_only_shrinks_the_order_passes_limits_the_account_already_exceeds() -> None:
    # Long 19.9 with 0.25 working: 20.15 if it all filled. The amend to 0.2 still leaves 20.1 — but less than before.
    risk = working(position(S, quantity="19.9", realized="-60000"))

    [shrink] = risk.handle(amend("ord-1", T, new_quantity=D("0.2")))
    [grow] = risk.handle(amend("ord-1", T + MS, new_quantity=D("0.3")))

    assert isinstance(shrink, AmendAccepted)
    assert isinstance(grow, AmendRejected) and grow.reason_code == "MAX_POSITION"


def test_a_price_only_amend_is_collared_but_a_quantity_only_amend_is_not() -> None:
    risk = working(limits(S, price_collar_bps=10))  # 39433.00 is within 10 bp of 39433.305
    later = tick(quotes()[-1])  # mid 39490.975: 39433.00 is now 14.7 bp away

    feed(risk, [later])
    [quantity_only] = risk.handle(amend("ord-1", quotes()[-1].at + MS, new_quantity=D("0.3")))
    [price] = risk.handle(amend("ord-1", quotes()[-1].at + 2 * MS, new_limit_price=D("39433.01")))

    assert isinstance(quantity_only, AmendAccepted)
    assert isinstance(price, AmendRejected) and price.reason_code == "PRICE_COLLAR"


def test_an_amend_needs_a_fresh_reference_price() -> None:
    risk = working()

    [decision] = risk.handle(amend("ord-1", Q.at + 5001 * MS, new_quantity=D("0.2")))

    assert isinstance(decision, AmendRejected) and decision.reason_code == "REFERENCE_PRICE_STALE"


def test_amending_below_what_is_filled_is_refused() -> None:
    risk = working()
    feed(risk, [filled("ord-1", T, quantity="0.2", leaves="0.05")])

    [decision] = risk.handle(amend("ord-1", T + MS, new_quantity=D("0.2")))

    assert isinstance(decision, AmendRejected) and decision.reason_code == "QUANTITY"
    assert "new quantity 0.20000000 is not above the 0.20000000 already filled" in decision.reason


def test_a_market_order_has_no_limit_price_to_amend() -> None:
    risk = engine()
    order = placed(1, T, order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, limit_price=None)
    feed(risk, [tick(Q), order])

    [decision] = risk.handle(amend("ord-1", T + MS, new_limit_price=D("39433.00")))

    assert isinstance(decision, AmendRejected) and decision.reason_code == "PRICE"


@pytest.mark.parametrize("setup", ["unknown", "rejected", "done", "other-account"])
def test_an_amend_of_an_order_risk_does_not_hold_open_is_refused(setup: str) -> None:
    risk = engine()
    feed(risk, [tick(Q)])
    if setup == "rejected":
        [rejected] = risk.handle(placed(1, Q.at + MS, quantity=D(9)))
        assert isinstance(rejected, OrderRejected)
    if setup == "done":
        feed(risk, [placed(1, Q.at + MS), filled("ord-1", Q.at + 2 * MS, quantity="0.25", leaves="0")])
    if setup == "other-account":
        feed(risk, [placed(1, Q.at + MS, account_id="acc-8")])

    [decision] = risk.handle(amend("ord-1", T, new_quantity=D("0.1")))

    assert isinstance(decision, AmendRejected) and decision.reason_code == "ORDER_NOT_OPEN"
    assert "ord-1" in decision.reason


def test_until_the_venue_confirms_an_amend_the_order_counts_at_the_larger_of_before_and_after() -> None:
    # Open notional at most 20,000: ord-1 is 0.25 at 39433.00 = 9858.25.
    risk = working(limits(S, max_open_notional=D(20_000)))
    feed(risk, [amend("ord-1", T, new_quantity=D("0.3"))])  # 11829.90 once confirmed

    # Counted as 0.3 already: 11829.90 + 8400.00 > 20,000 (at 0.25 it would fit: 9858.25 + 8400.00) ...
    [early] = risk.handle(placed(2, T + MS, quantity=D("0.21"), limit_price=D("40000.00")))
    # ... and still after the venue confirmed it.
    feed(risk, [amended("ord-1", T + 2 * MS, quantity="0.3", limit_price="39433.00", leaves="0.3")])
    [confirmed] = risk.handle(placed(3, T + 3 * MS, quantity=D("0.21"), limit_price=D("40000.00")))
    # A smaller order fits: 11829.90 + 8000.00 < 20,000.
    [smaller] = risk.handle(placed(4, T + 4 * MS, quantity=D("0.2"), limit_price=D("40000.00")))

    assert isinstance(early, OrderRejected) and early.reason_code == "MAX_OPEN_NOTIONAL"
    assert "11829.90000000" in early.reason
    assert isinstance(confirmed, OrderRejected) and confirmed.reason_code == "MAX_OPEN_NOTIONAL"
    assert isinstance(smaller, OrderAccepted)


def test_a_shrinking_amend_counts_at_the_old_size_until_the_venue_confirms_it() -> None:
    risk = working(limits(S, max_open_notional=D(20_000)))
    feed(risk, [amend("ord-1", T, new_quantity=D("0.05"))])

    [before_confirmation] = risk.handle(placed(2, T + MS, quantity=D("0.26"), limit_price=D("39433.00")))
    feed(risk, [amended("ord-1", T + 2 * MS, quantity="0.05", limit_price="39433.00", leaves="0.05")])
    [after_confirmation] = risk.handle(placed(3, T + 3 * MS, quantity=D("0.26"), limit_price=D("39433.00")))

    assert isinstance(before_confirmation, OrderRejected) and before_confirmation.reason_code == "MAX_OPEN_NOTIONAL"
    assert isinstance(after_confirmation, OrderAccepted)


def test_an_amend_the_venue_refuses_stops_counting() -> None:
    risk = working(limits(S, max_open_notional=D(20_000)))
    feed(risk, [amend("ord-1", T, new_quantity=D("0.3"))])  # counts as 0.3 (11829.90) until the venue answers
    [while_pending] = risk.handle(placed(2, T + MS, quantity=D("0.21"), limit_price=D("40000.00")))

    refused = build.order_amend_rejected(envelope=build.envelope(OrderAmendRejected, occurred_at=T + 2 * MS))
    feed(risk, [replace(refused, order_id="ord-1")])
    [after_refusal] = risk.handle(placed(3, T + 3 * MS, quantity=D("0.21"), limit_price=D("40000.00")))

    assert isinstance(while_pending, OrderRejected) and while_pending.reason_code == "MAX_OPEN_NOTIONAL"
    assert isinstance(after_refusal, OrderAccepted)  # 9858.25 + 8400.00
    assert risk.accounts["acc-7"].open_orders["ord-1"].amend_quantity is None
