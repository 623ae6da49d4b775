"""The pricing rules on their own: slippage rounding, fees (maker vs taker), sharing size, and the config."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pydantic
import pytest

from domain.instruments import InstrumentRegistry
from domain.venue import matching
from domain.venue.venue import SimulatedVenue, VenueConfig
from schemas.events import Liquidity, OrderFilled, Side, TimeInForce
from tests.domain.venue import market as m
from tests.support import events as examples

D = Decimal


@pytest.mark.parametrize(
    ("side", "price", "bps", "tick", "expected"),
    [
        (Side.BUY, D("39433.62"), D("1"), D("0.01"), D("39437.57")),  # 39437.563362 -> up
        (Side.SELL, D("39432.99"), D("1"), D("0.01"), D("39429.04")),  # 39429.046701 -> down
        (Side.BUY, D("40000.00"), D("2.5"), D("0.01"), D("40010.00")),  # exactly on a tick: no rounding
        (Side.SELL, D("40000.00"), D("2.5"), D("0.01"), D("39990.00")),
        (Side.BUY, D("8500.0"), D("3"), D("0.5"), D("8503.0")),  # XBTUSD's 0.5 tick: 8502.55 -> 8503.0
        (Side.SELL, D("8500.0"), D("3"), D("0.5"), D("8497.0")),  # 8497.45 -> 8497.0
        (Side.BUY, D("1.23456"), D("0"), D("0.00001"), D("1.23456")),
    ],
)
def test_slippage_moves_against_us_and_rounds_to_the_tick_away_from_us(
    side: Side, price: Decimal, bps: Decimal, tick: Decimal, expected: Decimal
) -> None:
    assert matching.slipped(side, price, bps, tick) == expected


def test_fees_are_exact_at_8_places_half_even_whatever_the_callers_decimal_context() -> None:
    assert matching.fee(D("39480.00"), D("0.262501"), D("-1")) == D("-1.03635395")  # a maker rebate
    assert matching.fee(D("39480.00"), D("0.262501"), D("7.5")) == D(
        "7.77265461"
    )  # 10363.53948 x 7.5 / 10,000: a taker fee
    assert matching.fee(D("1"), D("0.000150"), D("1")) == D("0.00000002")  # 1.5e-8: half to even, up
    assert matching.fee(D("1"), D("0.000250"), D("1")) == D("0.00000002")  # 2.5e-8: half to even, down
    with localcontext() as ctx:
        ctx.prec = 6
        assert matching.fee(D("39480.00"), D("0.262501"), D("7.5")) == D("7.77265461")


def test_maker_and_taker_fills_are_charged_their_own_fee_in_the_quote_currency() -> None:
    touch = m.quote(0)
    venue = m.venue()
    m.run(venue, m.quote_ticks()[:1])
    order = m.accepted("both", Side.BUY, "0.1", limit=touch["ask"], at=touch["ts"])
    (taker,) = m.of_type(venue.handle(order), OrderFilled)
    (maker, *_) = m.of_type(m.run(venue, m.quote_ticks()[1:]), OrderFilled)

    assert (taker.liquidity, maker.liquidity) == (Liquidity.TAKER, Liquidity.MAKER)
    for fill, bps in ((taker, D("7.5")), (maker, D("-1"))):
        assert fill.fee == (fill.fill_price * fill.fill_quantity * bps / 10_000).quantize(D("1E-8"))
        assert fill.fee_currency == "USDT"
    assert taker.fee > 0 > maker.fee


def test_fees_are_in_the_instruments_quote_currency() -> None:
    xbtusd = InstrumentRegistry.from_file()["XBTUSD"]
    venue = SimulatedVenue(xbtusd, m.CONFIG)
    tick = examples.tick_ingested(instrument="XBTUSD", bid=D("8500.0"), ask=D("8500.5"))
    venue.handle(tick)
    (fill,) = venue.handle(examples.order_accepted(instrument="XBTUSD", quantity=D("10"), limit_price=D("8501.0")))
    assert isinstance(fill, OrderFilled) and fill.fee_currency == "USD"


def test_size_is_shared_in_the_given_order_each_taking_all_it_can() -> None:
    assert matching.allocate([D("1"), D("2"), D("3")], D("2.5")) == [D("1"), D("1.5")]
    assert matching.allocate([D("1"), D("2")], None) == [D("1"), D("2")]
    assert matching.allocate([D("1")], D("0")) == []


def test_the_config_is_frozen_documented_and_refuses_impossible_values() -> None:
    config = VenueConfig(slippage_bps="2.5", maker_fee_bps="-1", taker_fee_bps="7.5")
    assert config.slippage_bps == D("2.5")
    assert all(field.description for field in VenueConfig.model_fields.values())
    with pytest.raises(pydantic.ValidationError):
        config.slippage_bps = D("3")  # type: ignore[misc]
    for bad in ({"slippage_bps": D("-1")}, {"slippage_bps": D("10000")}, {"taker_fee_bps": D("NaN")}, {"fee": 1}):
        with pytest.raises(pydantic.ValidationError):
            VenueConfig(**bad)


def test_a_market_order_on_the_venue_pays_the_rounded_slippage() -> None:
    touch = m.quote(0)  # ask 39433.62
    venue = m.venue(VenueConfig(slippage_bps=D("1")))
    m.run(venue, m.quote_ticks()[:1])
    (fill, *_) = venue.handle(m.accepted("mkt", Side.BUY, "0.01", at=touch["ts"], tif=TimeInForce.IOC))
    assert isinstance(fill, OrderFilled) and fill.fill_price == D("39437.57")
