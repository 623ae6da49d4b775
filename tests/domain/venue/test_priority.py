"""A quote's size goes to our resting orders in price-time priority: better limit first, then earlier arrival.

The scene, from the data: after the quote near the day's high, the ask falls in one jump through two limits — a
better one (39520.00) and the jump's own ask — so a single quote reaches three resting BUYs at once.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

import polars as pl

from schemas.events import Event, OrderAmended, OrderFilled, Side
from tests.domain.venue import market as m

TOP = 330
BETTER = Decimal("39520.00")


class Scene(NamedTuple):
    row: int  # the first quote after TOP whose ask reaches BETTER
    limit: Decimal  # that quote's ask: the worse of the two limits
    size: Decimal  # that quote's ask size


def scene() -> Scene:
    reaching = m.quotes().filter((pl.col("row") > TOP) & (pl.col("ask") <= BETTER)).row(0, named=True)
    found = Scene(reaching["row"], reaching["ask"], reaching["ask_size"])
    assert found.limit < BETTER  # the ask jumped through both limits at once
    return found


def fills_at_the_jump(*orders: Event) -> list[tuple[str, Decimal, Decimal]]:
    """(order, price, quantity) of what the jump's quote filled, with ``orders`` sent after quote TOP."""
    jump = scene().row
    venue = m.venue()
    m.run(venue, [*m.quote_ticks()[: TOP + 1], *orders, *m.quote_ticks()[TOP + 1 : jump]])
    derived = venue.handle(m.quote_ticks()[jump])
    return [(f.order_id, f.fill_price, f.fill_quantity) for f in m.of_type(derived, OrderFilled)]


def test_the_better_limit_fills_first_then_the_earlier_of_two_at_one_price() -> None:
    _, limit, size = scene()
    at = m.quote(TOP)["ts"]
    small = (size / 3).quantize(m.BTCUSDT.lot_size, rounding=ROUND_DOWN)

    fills = fills_at_the_jump(
        m.accepted("first-at-limit", Side.BUY, str(size), limit=limit, at=at),
        m.accepted("better-price", Side.BUY, str(small), limit=BETTER, at=at),
        m.accepted("second-at-limit", Side.BUY, str(size), limit=limit, at=at),
    )

    # Each at its own limit price: the better order is filled at 39520.00 although the ask is lower (MAKER).
    assert fills == [("better-price", BETTER, small), ("first-at-limit", limit, size - small)]


def test_an_amend_sends_the_order_to_the_back_of_the_queue() -> None:
    _, limit, size = scene()
    at = m.quote(TOP)["ts"]
    small = (size / 3).quantize(m.BTCUSDT.lot_size, rounding=ROUND_DOWN)

    fills = fills_at_the_jump(
        m.accepted("first-at-limit", Side.BUY, str(size), limit=limit, at=at),
        m.accepted("better-price", Side.BUY, str(small), limit=BETTER, at=at),
        m.accepted("second-at-limit", Side.BUY, str(size), limit=limit, at=at),
        m.amend("first-at-limit", quantity=str(size + 1), at=at),
    )

    assert fills == [("better-price", BETTER, small), ("second-at-limit", limit, size - small)]


def test_an_amend_that_changes_neither_quantity_nor_price_still_loses_time_priority() -> None:
    _, limit, size = scene()
    at = m.quote(TOP)["ts"]
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: TOP + 1])
    m.run(venue, [m.accepted("a", Side.BUY, str(size), limit=limit, at=at)])
    m.run(venue, [m.accepted("b", Side.BUY, str(size), limit=limit, at=at)])

    (amended,) = venue.handle(m.amend("a", limit=limit, at=at))

    assert isinstance(amended, OrderAmended) and amended.quantity == size and amended.limit_price == limit
    assert [o.order_id for _, o in venue.book.in_priority(Side.BUY)] == ["b", "a"]
