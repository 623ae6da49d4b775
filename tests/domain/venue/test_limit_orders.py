"""LIMIT orders: marketable on arrival they take the touch (TAKER); resting, later quotes and prints fill them (MAKER).

The references are computed with polars on the recorded data: the quotes (or prints) after acceptance that reach
the limit, each filling what its size offers until the order is filled.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from schemas.events import Event, Liquidity, OrderAccepted, OrderExpired, OrderFilled, Side, TimeInForce
from tests.domain.venue import market as m

TOP = 330  # a quote near the day's high (ask 39550.00): the price falls a long way after it
BUY_LIMIT = Decimal("39480.00")
SELL_LIMIT = Decimal("39520.00")


def maker_fee(price: Decimal, quantity: Decimal) -> Decimal:
    return (price * quantity * m.CONFIG.maker_fee_bps / 10_000).quantize(Decimal("1E-8"))


def accepted_after_quote(row: int, *orders: OrderAccepted) -> list[Event]:
    """The day's quotes with ``orders`` accepted right after quote ``row``."""
    ticks = list(m.quote_ticks())
    return [*ticks[: row + 1], *orders, *ticks[row + 1 :]]


def test_a_resting_buy_fills_as_maker_at_its_limit_on_each_later_quote_that_reaches_it() -> None:
    assert m.quote(TOP)["ask"] > BUY_LIMIT  # not marketable on arrival: it rests
    quantity = Decimal("2")
    order = m.accepted("gtc-buy", Side.BUY, str(quantity), limit=BUY_LIMIT, at=m.quote(TOP)["ts"])

    fills = m.of_type(m.run(m.venue(), accepted_after_quote(TOP, order)), OrderFilled)

    reaching = m.quotes().filter((pl.col("row") > TOP) & (pl.col("ask") <= BUY_LIMIT))
    reference = m.maker_fills(reaching, "ask_size", quantity)
    assert reference.height >= 3 and reference["cumulative"][-1] == quantity  # several partial fills, then done
    assert [(f.fill_price, f.fill_quantity, f.cumulative_quantity) for f in fills] == [
        (BUY_LIMIT, row["fill"], row["cumulative"]) for row in reference.iter_rows(named=True)
    ]
    assert [f.leaves_quantity for f in fills] == [quantity - c for c in reference["cumulative"]]
    assert [f.is_final for f in fills] == [False] * (len(fills) - 1) + [True]
    assert {f.liquidity for f in fills} == {Liquidity.MAKER}
    assert [f.fee for f in fills] == [maker_fee(BUY_LIMIT, q) for q in reference["fill"]]
    assert all(f.fee < 0 for f in fills)  # a rebate
    assert [f.fill_id for f in fills] == [f"gtc-buy-{n}" for n in range(1, len(fills) + 1)]
    # Each fill happened when, and because, its quote arrived.
    triggers = [m.quote_ticks()[row] for row in reference["row"]]
    assert [f.envelope.occurred_at for f in fills] == [t.envelope.occurred_at for t in triggers]
    assert [f.envelope.causation_id for f in fills] == [str(t.envelope.event_id) for t in triggers]


def test_a_resting_sell_fills_only_on_prints_strictly_through_its_limit() -> None:
    quantity = Decimal("0.05")
    first = m.trade_ticks()[0].envelope.occurred_at
    order = m.accepted("gtc-sell", Side.SELL, str(quantity), limit=SELL_LIMIT, at=first)

    fills = m.of_type(m.run(m.venue(), [order, *m.trade_ticks()]), OrderFilled)

    trades = m.trades()
    reference = m.maker_fills(trades.filter(pl.col("price") > SELL_LIMIT), "size", quantity)
    at_the_limit = trades.filter((pl.col("price") == SELL_LIMIT) & (pl.col("row") < reference["row"][0]))
    assert at_the_limit.height >= 3  # prints at the limit came first, and filled nothing
    assert [(f.fill_price, f.fill_quantity, f.cumulative_quantity) for f in fills] == [
        (SELL_LIMIT, row["fill"], row["cumulative"]) for row in reference.iter_rows(named=True)
    ]
    assert [f.envelope.causation_id for f in fills] == [
        str(m.trade_ticks()[row].envelope.event_id) for row in reference["row"]
    ]
    assert fills[-1].is_final and fills[-1].leaves_quantity == 0


def test_one_print_is_shared_among_resting_orders_in_time_priority() -> None:
    through = m.trades().filter(pl.col("price") > SELL_LIMIT).row(0, named=True)
    first = m.trade_ticks()[0].envelope.occurred_at
    early = m.accepted("early", Side.SELL, "0.001", limit=SELL_LIMIT, at=first)
    late = m.accepted("late", Side.SELL, "1", limit=SELL_LIMIT, at=first)
    venue = m.venue()
    m.run(venue, [early, late, *m.trade_ticks()[: through["row"]]])

    derived = venue.handle(m.trade_ticks()[through["row"]])

    assert [(f.order_id, f.fill_quantity) for f in m.of_type(derived, OrderFilled)] == [
        ("early", Decimal("0.001")),
        ("late", through["size"] - Decimal("0.001")),
    ]


def test_a_marketable_buy_limit_takes_the_ask_not_its_limit_and_its_gtc_rest_rests_and_fills_as_maker() -> None:
    quantity = Decimal("0.05")
    row = int(m.quotes().filter(pl.col("ask_size") < quantity)["row"][0])
    touch = m.quote(row)
    limit = touch["ask"] + 5
    order = m.accepted("mkt-limit", Side.BUY, str(quantity), limit=limit, at=touch["ts"])

    fills = m.of_type(m.run(m.venue(), accepted_after_quote(row, order)), OrderFilled)

    taker, *makers = fills
    assert (taker.fill_price, taker.fill_quantity, taker.liquidity) == (
        touch["ask"],
        touch["ask_size"],
        Liquidity.TAKER,
    )
    assert taker.fill_price < limit
    assert taker.fee == (touch["ask"] * touch["ask_size"] * m.CONFIG.taker_fee_bps / 10_000).quantize(Decimal("1E-8"))
    reaching = m.quotes().filter((pl.col("row") > row) & (pl.col("ask") <= limit))
    reference = m.maker_fills(reaching, "ask_size", quantity - touch["ask_size"])
    assert [(f.fill_price, f.fill_quantity, f.liquidity) for f in makers] == [
        (limit, q, Liquidity.MAKER) for q in reference["fill"]
    ]
    assert makers, "the data has quotes that reach the resting rest"
    filled = touch["ask_size"] + sum(reference["fill"])
    assert (makers[-1].cumulative_quantity, makers[-1].leaves_quantity) == (filled, quantity - filled)
    assert makers[-1].is_final is (filled == quantity)


def test_a_marketable_ioc_limit_fills_what_the_touch_has_and_the_rest_expires() -> None:
    quantity = Decimal("0.05")
    row = int(m.quotes().filter(pl.col("bid_size") < quantity)["row"][0])
    touch = m.quote(row)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])

    fill, expired = venue.handle(
        m.accepted("ioc", Side.SELL, str(quantity), limit=touch["bid"] - 3, at=touch["ts"], tif=TimeInForce.IOC)
    )

    assert isinstance(fill, OrderFilled) and isinstance(expired, OrderExpired)
    assert (fill.fill_price, fill.fill_quantity, fill.liquidity) == (touch["bid"], touch["bid_size"], Liquidity.TAKER)
    assert expired.expired_quantity == quantity - touch["bid_size"]
    assert venue.book.resting == {}


def test_a_fok_limit_fills_all_at_the_touch_or_nothing() -> None:
    quantity = Decimal("0.05")
    small = m.quote(int(m.quotes().filter(pl.col("ask_size") < quantity)["row"][0]))
    large = m.quote(int(m.quotes().filter(pl.col("ask_size") >= quantity)["row"][0]))

    for touch, expected in ((small, [OrderExpired]), (large, [OrderFilled])):
        venue = m.venue()
        m.run(venue, m.quote_ticks()[: touch["row"] + 1])
        order = m.accepted("fok", Side.BUY, str(quantity), limit=touch["ask"], at=touch["ts"], tif=TimeInForce.FOK)
        (derived,) = venue.handle(order)
        assert [type(derived)] == expected
        if isinstance(derived, OrderFilled):
            assert (derived.fill_price, derived.fill_quantity) == (touch["ask"], quantity)
        else:
            assert isinstance(derived, OrderExpired) and derived.expired_quantity == quantity


def test_a_limit_ioc_the_touch_does_not_reach_expires_whole_and_says_why() -> None:
    touch = m.quote(0)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[:1])
    (expired,) = venue.handle(
        m.accepted("far", Side.BUY, "0.1", limit=touch["bid"], at=touch["ts"], tif=TimeInForce.IOC)
    )
    assert isinstance(expired, OrderExpired)
    assert expired.expired_quantity == Decimal("0.1")
    assert expired.reason == f"IOC remainder: the ask {touch['ask']:.8f} does not reach the limit {touch['bid']}"
