"""MARKET orders take the touch at once, moved by the slippage and rounded to the tick away from us; IOC and FOK."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import polars as pl

from domain.venue.venue import VenueConfig
from schemas.events import Liquidity, OrderExpired, OrderFilled, Side, TimeInForce
from tests.domain.venue import market as m

QUANTITY = Decimal("0.05")


def slipped(price: Decimal, side: Side, bps: Decimal = m.CONFIG.slippage_bps) -> Decimal:
    """The reference: price x (1 +/- bps/10,000), onto the 0.01 tick, up for a BUY and down for a SELL."""
    if side is Side.BUY:
        return (price * (1 + bps / 10_000)).quantize(m.BTCUSDT.tick_size, rounding=ROUND_CEILING)
    return (price * (1 - bps / 10_000)).quantize(m.BTCUSDT.tick_size, rounding=ROUND_FLOOR)


def taker_fee(price: Decimal, quantity: Decimal) -> Decimal:
    return (price * quantity * m.CONFIG.taker_fee_bps / 10_000).quantize(Decimal("1E-8"))


def first_quote(condition: pl.Expr) -> int:
    return int(m.quotes().filter(condition)["row"][0])


def test_a_market_buy_takes_the_ask_moved_up_by_slippage_for_at_most_its_size_and_the_ioc_rest_expires() -> None:
    row = first_quote(pl.col("ask_size") < QUANTITY)
    touch = m.quote(row)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])
    at = m.quote_ticks()[row].envelope.occurred_at

    fill, expired = venue.handle(m.accepted("mkt-1", Side.BUY, str(QUANTITY), at=at, tif=TimeInForce.IOC))

    assert isinstance(fill, OrderFilled) and isinstance(expired, OrderExpired)
    price = slipped(touch["ask"], Side.BUY)
    assert price > touch["ask"]
    assert (fill.fill_price, fill.fill_quantity) == (price, touch["ask_size"])
    assert (fill.cumulative_quantity, fill.leaves_quantity) == (touch["ask_size"], QUANTITY - touch["ask_size"])
    assert (fill.liquidity, fill.is_final, fill.fill_id) == (Liquidity.TAKER, False, "mkt-1-1")
    assert (fill.fee, fill.fee_currency) == (taker_fee(price, touch["ask_size"]), "USDT")
    assert expired.expired_quantity == QUANTITY - touch["ask_size"]
    assert expired.reason.startswith("IOC remainder: not enough size at the ask")


def test_a_market_sell_takes_the_bid_moved_down_by_slippage_and_fills_in_full_when_the_size_is_there() -> None:
    row = first_quote(pl.col("bid_size") >= QUANTITY)
    touch = m.quote(row)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])

    (fill,) = venue.handle(m.accepted("mkt-2", Side.SELL, str(QUANTITY), at=touch["ts"], tif=TimeInForce.IOC))

    assert isinstance(fill, OrderFilled)
    assert fill.fill_price == slipped(touch["bid"], Side.SELL) < touch["bid"]
    assert (fill.fill_quantity, fill.leaves_quantity, fill.is_final) == (QUANTITY, Decimal(0), True)


def test_slippage_is_rounded_to_the_tick_away_from_us_on_every_quote_of_the_day() -> None:
    venue = m.venue(VenueConfig(slippage_bps=Decimal("1.3")))
    one_lot = str(m.BTCUSDT.lot_size)
    buys: list[OrderFilled] = []
    sells: list[OrderFilled] = []
    for quote in m.quote_ticks():
        venue.handle(quote)
        at, n = quote.envelope.occurred_at, quote.envelope.sequence
        buys += m.of_type(
            venue.handle(m.accepted(f"b-{n}", Side.BUY, one_lot, at=at, tif=TimeInForce.IOC)), OrderFilled
        )
        sells += m.of_type(
            venue.handle(m.accepted(f"s-{n}", Side.SELL, one_lot, at=at, tif=TimeInForce.IOC)), OrderFilled
        )

    quotes = m.quotes()
    assert [f.fill_price for f in buys] == [slipped(p, Side.BUY, Decimal("1.3")) for p in quotes["ask"]]
    assert [f.fill_price for f in sells] == [slipped(p, Side.SELL, Decimal("1.3")) for p in quotes["bid"]]
    tick = m.BTCUSDT.tick_size
    for fill, ask in zip(buys, quotes["ask"], strict=True):
        assert ask * Decimal("1.00013") <= fill.fill_price < ask * Decimal("1.00013") + tick
    for fill, bid in zip(sells, quotes["bid"], strict=True):
        assert bid * Decimal("0.99987") - tick < fill.fill_price <= bid * Decimal("0.99987")


def test_without_slippage_a_market_order_pays_the_touch_exactly() -> None:
    row = 0
    venue = m.venue(VenueConfig())
    m.run(venue, m.quote_ticks()[:1])
    (fill, *_) = venue.handle(m.accepted("mkt-3", Side.BUY, "0.01", at=m.quote(row)["ts"], tif=TimeInForce.IOC))
    assert isinstance(fill, OrderFilled)
    assert fill.fill_price == m.quote(row)["ask"]


def test_a_fok_that_the_touch_cannot_fill_in_full_expires_with_nothing_filled_and_takes_no_size() -> None:
    row = first_quote(pl.col("ask_size") < QUANTITY)
    touch = m.quote(row)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])

    (expired,) = venue.handle(m.accepted("fok-1", Side.BUY, str(QUANTITY), at=touch["ts"], tif=TimeInForce.FOK))
    assert isinstance(expired, OrderExpired)
    assert expired.expired_quantity == QUANTITY
    assert expired.reason.startswith("FOK not fillable in full")

    # The size is still there for the next order.
    (fill, _) = venue.handle(m.accepted("ioc-1", Side.BUY, str(QUANTITY), at=touch["ts"], tif=TimeInForce.IOC))
    assert isinstance(fill, OrderFilled) and fill.fill_quantity == touch["ask_size"]


def test_a_fok_that_the_touch_can_fill_fills_all_at_once() -> None:
    row = first_quote(pl.col("ask_size") >= QUANTITY)
    touch = m.quote(row)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])

    (fill,) = venue.handle(m.accepted("fok-2", Side.BUY, str(QUANTITY), at=touch["ts"], tif=TimeInForce.FOK))
    assert isinstance(fill, OrderFilled)
    assert (fill.fill_price, fill.fill_quantity, fill.is_final) == (slipped(touch["ask"], Side.BUY), QUANTITY, True)


def test_orders_on_one_quote_share_its_size_the_second_gets_what_the_first_left() -> None:
    row = first_quote(pl.col("ask_size") >= QUANTITY)
    touch = m.quote(row)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])
    first = touch["ask_size"] - Decimal("0.001")

    m.run(venue, [m.accepted("one", Side.BUY, str(first), at=touch["ts"], tif=TimeInForce.IOC)])
    fill, expired = venue.handle(m.accepted("two", Side.BUY, "1", at=touch["ts"], tif=TimeInForce.IOC))
    assert isinstance(fill, OrderFilled) and isinstance(expired, OrderExpired)
    assert fill.fill_quantity == Decimal("0.001")
    assert expired.expired_quantity == Decimal("0.999")

    (nothing_left,) = venue.handle(m.accepted("three", Side.BUY, "1", at=touch["ts"], tif=TimeInForce.IOC))
    assert isinstance(nothing_left, OrderExpired) and nothing_left.expired_quantity == 1


def test_with_no_quote_yet_a_market_order_expires_whole() -> None:
    at = m.quote_ticks()[0].envelope.occurred_at
    (expired,) = m.venue().handle(m.accepted("early", Side.SELL, "0.2", at=at, tif=TimeInForce.IOC))
    assert isinstance(expired, OrderExpired)
    assert (expired.expired_quantity, expired.reason) == (Decimal("0.2"), "IOC remainder: no bid quoted")


def test_a_market_gtc_is_worked_as_ioc() -> None:
    row = first_quote(pl.col("ask_size") < QUANTITY)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[: row + 1])
    derived = venue.handle(m.accepted("gtc", Side.BUY, str(QUANTITY), at=m.quote(row)["ts"], tif=TimeInForce.GTC))
    assert [type(e) for e in derived] == [OrderFilled, OrderExpired]
    assert venue.book.resting == {}
