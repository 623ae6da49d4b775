"""Which orders risk counts as working, and for how much: fills, cancels, expiries and venue amends keep it current."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.risk import RiskEngine
from schemas.events import Event, OrderAccepted, OrderRejected, OrderType, Side, TimeInForce
from tests.domain.risk.scenario import (
    amended,
    cancelled,
    engine,
    expired,
    feed,
    filled,
    limits,
    placed,
    position,
    quotes,
    tick,
)

D = Decimal
MS = timedelta(milliseconds=1)
Q = quotes()[0]  # mid 39433.305


def at(ms: int) -> timedelta:
    return ms * MS


def open_book() -> RiskEngine:
    """ord-1, a buy of 1 BTC at 39433.00 (39,433 of open notional), with at most 50,000 allowed."""
    risk = engine()
    feed(risk, [tick(Q), limits(Q.at, max_open_notional=D(50_000)), placed(1, Q.at + at(1), quantity=D(1))])
    return risk


def decide(risk: RiskEngine, n: int, ms: int, quantity: str = "0.3") -> Event:
    """Order ``n``: a buy of ``quantity`` (0.3 by default: 11,829.90 of notional) at 39433.00."""
    [decision] = risk.handle(placed(n, Q.at + at(ms), quantity=D(quantity)))
    return decision


def leaves(risk: RiskEngine) -> dict[str, Decimal]:
    return {order_id: order.leaves for order_id, order in risk.accounts["acc-7"].open_orders.items()}


def test_a_partial_fill_frees_what_it_filled() -> None:
    risk = open_book()
    refused = decide(risk, 2, 10)  # 39,433.00 + 11,829.90 > 50,000

    feed(risk, [filled("ord-1", Q.at + at(20), quantity="0.5", leaves="0.5")])
    after_fill = decide(risk, 3, 30)  # 19,716.50 + 11,829.90

    assert isinstance(refused, OrderRejected) and refused.reason_code == "MAX_OPEN_NOTIONAL"
    assert isinstance(after_fill, OrderAccepted)
    assert leaves(risk) == {"ord-1": D("0.5"), "ord-3": D("0.3")}


@pytest.mark.parametrize(
    "done",
    [
        pytest.param(lambda t: filled("ord-1", t, quantity="1", leaves="0"), id="filled"),
        pytest.param(lambda t: cancelled("ord-1", t), id="cancelled"),
        pytest.param(lambda t: expired("ord-1", t), id="expired"),
        pytest.param(lambda t: amended("ord-1", t, quantity="0.4", limit_price="39433.00", leaves="0"), id="amended"),
    ],
)
def test_a_done_order_leaves_the_working_set(done: object) -> None:
    risk = open_book()
    assert callable(done)

    feed(risk, [done(Q.at + at(20))])

    assert leaves(risk) == {}
    assert isinstance(decide(risk, 2, 30, quantity="1.2"), OrderAccepted)  # 47,319.60 alone


def test_fills_after_fills_and_the_final_one() -> None:
    risk = open_book()
    fills = [("0.2", "0.8"), ("0.3", "0.5"), ("0.5", "0")]
    seen = []
    for n, (quantity, left) in enumerate(fills):
        feed(risk, [filled("ord-1", Q.at + at(10 + n), quantity=quantity, leaves=left)])
        seen.append(leaves(risk))

    assert seen == [{"ord-1": D("0.8")}, {"ord-1": D("0.5")}, {}]


def test_a_venue_amend_changes_what_the_order_counts_for() -> None:
    risk = open_book()

    feed(risk, [amended("ord-1", Q.at + at(10), quantity="0.5", limit_price="39000.00", leaves="0.4")])
    order = risk.accounts["acc-7"].open_orders["ord-1"]

    assert (order.quantity, order.leaves, order.limit_price) == (D("0.5"), D("0.4"), D("39000.00"))
    # 0.4 at 39,000 = 15,600, so 34,400 is left: 0.87 at 39433.00 = 34,306.71 fits, 0.88 = 34,701.04 does not.
    assert isinstance(decide(risk, 2, 20, quantity="0.88"), OrderRejected)
    assert isinstance(decide(risk, 3, 30, quantity="0.87"), OrderAccepted)


@pytest.mark.parametrize(("order_id", "account_id"), [("ord-404", "acc-7"), ("ord-1", "acc-8"), ("ord-1", "acc-404")])
def test_reports_of_orders_risk_does_not_hold_for_that_account_change_nothing(order_id: str, account_id: str) -> None:
    risk = open_book()
    before = risk.to_snapshot()

    feed(
        risk,
        [
            filled(order_id, Q.at + at(10), quantity="0.1", leaves="0.1", account_id=account_id),
            cancelled(order_id, Q.at + at(11), account_id=account_id),
            expired(order_id, Q.at + at(12), account_id=account_id),
            amended(order_id, Q.at + at(13), quantity="1", limit_price=None, leaves="1", account_id=account_id),
        ],
    )

    assert risk.to_snapshot() == before


def test_a_market_order_counts_at_the_reference_price_it_was_accepted_at() -> None:
    risk = engine()
    market = placed(1, Q.at + at(1), order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, limit_price=None)
    feed(risk, [tick(Q), market, tick(quotes()[-1])])

    assert risk.accounts["acc-7"].open_orders["ord-1"].price == D("39433.305")
    assert risk.accounts["acc-7"].open_notional("USDT") == D("9858.32625")


def test_working_orders_count_towards_the_position_until_they_fill_and_the_position_says_so() -> None:
    # Position limit 20: long 19 with 0.8 working leaves room for 0.2 more.
    risk = engine()
    feed(risk, [tick(Q), position(Q.at, quantity="19", realized="0"), placed(1, Q.at + at(1), quantity=D("0.8"))])
    assert isinstance(decide(risk, 2, 10, quantity="0.3"), OrderRejected)

    # 0.5 fills: the venue's report and the position change, in whichever order they come, end at the same place.
    feed(
        risk,
        [
            filled("ord-1", Q.at + at(20), quantity="0.5", leaves="0.3"),
            position(Q.at + at(20), quantity="19.5", realized="0", fill_id="f-2"),
        ],
    )
    assert isinstance(decide(risk, 3, 30, quantity="0.3"), OrderRejected)  # 19.5 + 0.3 + 0.3 = 20.1
    assert isinstance(decide(risk, 4, 40, quantity="0.2"), OrderAccepted)  # 19.5 + 0.3 + 0.2 = 20
    assert risk.accounts["acc-7"].working_quantity("BTCUSDT", Side.BUY) == D("0.5")
