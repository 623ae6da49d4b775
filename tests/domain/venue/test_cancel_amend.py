"""Cancels and amends of our resting orders, and their refusals.

The scene: a BUY 2 @ 39480.00 rests after the quote near the day's high; the first quote that reaches it fills
part of it, as the polars reference says.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from domain.venue.venue import SimulatedVenue
from schemas.events import (
    CancelRejected,
    Liquidity,
    OrderAmended,
    OrderAmendRejected,
    OrderCancelled,
    OrderFilled,
    Side,
    TimeInForce,
)
from tests.domain.venue import market as m

TOP = 330
LIMIT = Decimal("39480.00")
QUANTITY = Decimal("2")


def first_reach() -> dict[str, Any]:
    return m.quotes().filter((pl.col("row") > TOP) & (pl.col("ask") <= LIMIT)).row(0, named=True)


def resting(upto: int) -> SimulatedVenue:
    """A venue with the BUY resting since quote TOP, fed the quotes up to and including ``upto``."""
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: TOP + 1])
    m.run(venue, [m.accepted("buy", Side.BUY, str(QUANTITY), limit=LIMIT, at=m.quote(TOP)["ts"])])
    m.run(venue, m.quote_ticks()[TOP + 1 : upto + 1])
    return venue


def partly_filled() -> tuple[SimulatedVenue, Decimal]:
    """The venue just after the first quote that reached the order, and what that quote filled."""
    reach = first_reach()
    assert reach["ask_size"] < QUANTITY
    return resting(int(reach["row"])), reach["ask_size"]


def test_a_cancel_cancels_what_is_left_and_nothing_fills_after_it() -> None:
    venue, filled = partly_filled()
    at = m.quote(TOP)["ts"]

    (cancelled,) = venue.handle(m.cancel("buy", at=at))

    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.cancelled_quantity, cancelled.reason) == (QUANTITY - filled, "requested by owner")
    assert m.of_type(m.run(venue, m.quote_ticks()[int(first_reach()["row"]) + 1 :]), OrderFilled) == []


def test_the_cancel_reason_risk_gave_is_kept() -> None:
    venue = resting(TOP)
    (cancelled,) = venue.handle(m.cancel("buy", at=m.quote(TOP)["ts"], reason="KILL_SWITCH"))
    assert isinstance(cancelled, OrderCancelled) and cancelled.reason == "KILL_SWITCH"
    assert cancelled.cancelled_quantity == QUANTITY


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("nothing", "unknown order"),
        ("cancelled", "order already cancelled"),
        ("filled", "order already filled"),
        ("expired", "order already expired"),
    ],
)
def test_a_cancel_or_amend_of_an_order_that_is_not_working_is_rejected_with_the_reason(setup: str, reason: str) -> None:
    venue = resting(TOP)
    touch = m.quote(TOP)
    if setup == "cancelled":
        venue.handle(m.cancel("buy", at=touch["ts"]))
    elif setup == "filled":
        venue.handle(m.cancel("buy", at=touch["ts"]))
        m.run(venue, [m.accepted("other", Side.BUY, "0.01", at=touch["ts"], tif=TimeInForce.IOC)])
    elif setup == "expired":
        venue.handle(m.cancel("buy", at=touch["ts"]))
        m.run(venue, [m.accepted("other", Side.BUY, "0.1", limit=LIMIT, at=touch["ts"], tif=TimeInForce.IOC)])
    target = "buy" if setup == "cancelled" else "other"

    (cancel_rejected,) = venue.handle(m.cancel(target, at=touch["ts"]))
    (amend_rejected,) = venue.handle(m.amend(target, quantity="5", at=touch["ts"]))

    assert isinstance(cancel_rejected, CancelRejected) and cancel_rejected.reason == reason
    assert isinstance(amend_rejected, OrderAmendRejected) and amend_rejected.reason == reason
    assert (amend_rejected.order_id, amend_rejected.account_id) == (target, m.ACCOUNT)


def test_another_accounts_cancel_or_amend_is_rejected_and_the_order_keeps_working() -> None:
    venue = resting(TOP)
    at = m.quote(TOP)["ts"]

    (cancel,) = venue.handle(m.cancel("buy", at=at, account="acc-intruder"))
    (amend,) = venue.handle(m.amend("buy", quantity="9", at=at, account="acc-intruder"))

    assert isinstance(cancel, CancelRejected) and cancel.reason == "order belongs to another account"
    assert isinstance(amend, OrderAmendRejected) and amend.reason == "order belongs to another account"
    assert venue.book.resting["buy"].quantity == QUANTITY


def test_an_amend_of_the_quantity_keeps_the_price_and_leaves_what_is_not_yet_filled() -> None:
    venue, filled = partly_filled()

    (amended,) = venue.handle(m.amend("buy", quantity="3", at=m.quote(TOP)["ts"]))

    assert isinstance(amended, OrderAmended)
    assert (amended.quantity, amended.limit_price, amended.leaves_quantity) == (Decimal(3), LIMIT, 3 - filled)
    later = m.of_type(m.run(venue, m.quote_ticks()[int(first_reach()["row"]) + 1 :]), OrderFilled)
    assert later[0].cumulative_quantity == filled + later[0].fill_quantity
    assert later[0].leaves_quantity == 3 - later[0].cumulative_quantity


@pytest.mark.parametrize("new_quantity", ["same", "less"])
def test_an_amend_to_no_more_than_is_filled_is_rejected_and_changes_nothing(new_quantity: str) -> None:
    venue, filled = partly_filled()
    quantity = filled if new_quantity == "same" else filled - Decimal("0.000001")

    (rejected,) = venue.handle(m.amend("buy", quantity=str(quantity), at=m.quote(TOP)["ts"]))

    assert isinstance(rejected, OrderAmendRejected)
    assert rejected.reason == f"new quantity {quantity:.8f} is not above the filled quantity {filled:.8f}"
    assert venue.book.resting["buy"].quantity == QUANTITY


def test_an_amend_to_a_marketable_price_fills_at_once_as_taker_and_the_rest_rests_at_the_new_price() -> None:
    small = (pl.col("row") > TOP) & (pl.col("ask") > LIMIT) & (pl.col("ask_size") < QUANTITY)
    row = int(m.quotes().filter(small)["row"][0])
    touch = m.quote(row)
    venue = resting(row)
    new_limit = touch["ask"] + 1
    assert row < first_reach()["row"]

    amended, fill = venue.handle(m.amend("buy", limit=new_limit, at=touch["ts"]))

    assert isinstance(amended, OrderAmended) and isinstance(fill, OrderFilled)
    assert (amended.quantity, amended.limit_price, amended.leaves_quantity) == (QUANTITY, new_limit, QUANTITY)
    assert (fill.fill_price, fill.fill_quantity, fill.liquidity) == (touch["ask"], touch["ask_size"], Liquidity.TAKER)
    assert fill.envelope.sequence == amended.envelope.sequence + 1
    assert venue.book.resting["buy"].limit_price == new_limit
    assert venue.book.resting["buy"].leaves == QUANTITY - touch["ask_size"]
