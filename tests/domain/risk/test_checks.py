"""Every pre-trade check, passing and failing: one row per case, fed to a fresh engine after the row's setup events.

References are the recorded Binance BTCUSDT quotes of 2021-01-08: the first (00:00:01.076, bid 39432.99, ask 39433.62,
a mid of 39433.305) unless a row says otherwise. Limits are the test-support ones — max order 5 BTC and 250,000 USDT,
position 20, open notional 1,000,000, daily loss 50,000, 20 orders/s, collar 500 bp, reference age 5 s — unless a
row sets its own. The order under test is placed 100 ms after the first quote unless a row says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.derive import derived_envelope
from domain.risk import NEW_ORDER_CHECKS, ReasonCode, rules
from schemas.events import Event, OrderAccepted, OrderPlaced, OrderRejected, OrderType, Side, TimeInForce
from tests.domain.risk.scenario import (
    engine,
    feed,
    kill_switch,
    limits,
    placed,
    position,
    price_tick,
    quotes,
    tick,
)

D = Decimal
MS = timedelta(milliseconds=1)
Q0 = quotes()[0]
LAST = quotes()[-1]  # 00:00:46.674, bid 39490.97, ask 39490.98: a mid of 39490.975
T = Q0.at + 100 * MS
REF = tick(Q0)
ALL_QUOTES = tuple(tick(q) for q in quotes())
R = ReasonCode


@dataclass(frozen=True)
class Case:
    id: str
    check: ReasonCode
    """The check the row is about."""
    order: OrderPlaced
    rejected: bool
    setup: tuple[Event, ...] = (REF,)
    mentions: tuple[str, ...] = ()
    """What the reason must say: the limit and the values compared."""


def order(side: Side, quantity: str, price: str | None, at: datetime, fields: dict[str, Any]) -> OrderPlaced:
    kwargs: dict[str, Any] = {"side": side, "quantity": D(quantity), "limit_price": None if price is None else D(price)}
    if price is None:
        kwargs.update(order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC)
    return placed(1, at, **{**kwargs, **fields})


def buy(quantity: str, price: str | None = "39433.00", at: datetime = T, **fields: Any) -> OrderPlaced:
    """The order under test: a limit buy (a market IOC buy when ``price`` is None)."""
    return order(Side.BUY, quantity, price, at, fields)


def sell(quantity: str, price: str | None = "39433.00", at: datetime = T, **fields: Any) -> OrderPlaced:
    return order(Side.SELL, quantity, price, at, fields)


def before(n: int, ms: int, side: Side = Side.BUY, **fields: Any) -> OrderPlaced:
    """Order ``n``, ``ms`` after the first quote (so before the order under test), by default accepted."""
    return placed(n, Q0.at + ms * MS, side=side, **fields)


def pos(quantity: str, realized: str = "0", instrument: str = "BTCUSDT", ms: int = 50) -> Event:
    return position(Q0.at + ms * MS, quantity=quantity, realized=realized, instrument=instrument)


def set_limits(**fields: Any) -> Event:
    return limits(Q0.at, **fields)


PER_ORDER_NOTIONAL = set_limits(max_order_notional=D(10_000))
OPEN_NOTIONAL = set_limits(max_open_notional=D(20_000))
RATE = set_limits(max_orders_per_second=2)
LOSS = "-50000.00000001"

CASES = [
    Case("tradable", R.INSTRUMENT_NOT_TRADABLE, buy("0.25"), False),
    Case("unknown", R.INSTRUMENT_NOT_TRADABLE, buy("0.25", instrument="DOGEUSDT"), True, mentions=("DOGEUSDT",)),
    Case("halted", R.INSTRUMENT_NOT_TRADABLE, buy("0.25", instrument="HALTED"), True, mentions=("not tradable",)),
    #
    Case("at-min", R.QUANTITY, buy("0.000001"), False),
    Case("below-min", R.QUANTITY, buy("0.0000005"), True, mentions=("0.00000050", "minimum 0.000001")),
    Case("above-max", R.QUANTITY, buy("9000.000001"), True, mentions=("9000.00000100", "maximum 9000")),
    Case("off-lot", R.QUANTITY, buy("0.0000015"), True, mentions=("0.00000150", "lot size 0.000001")),
    #
    Case("limit", R.PRICE, buy("0.25", "39433.00"), False),
    Case("market", R.PRICE, buy("0.25", None), False),
    Case("limit-without", R.PRICE, buy("0.25", limit_price=None), True, mentions=("LIMIT order needs",)),
    Case("market-with", R.PRICE, buy("0.25", order_type=OrderType.MARKET), True, mentions=("MARKET order takes",)),
    Case("off-tick", R.PRICE, buy("0.25", "39433.305"), True, mentions=("39433.30500000", "tick size 0.01")),
    #
    Case("at-limit", R.MAX_ORDER_QUANTITY, buy("5"), False),
    Case("over", R.MAX_ORDER_QUANTITY, buy("5.000001"), True, mentions=("5.00000100", "max_order_quantity 5.00000000")),
    #
    Case("new", R.DUPLICATE_CLIENT_ORDER_ID, buy("0.25"), False, (REF, before(0, 10))),
    Case(
        "other-account",
        R.DUPLICATE_CLIENT_ORDER_ID,
        buy("0.25"),
        False,
        (REF, before(0, 10, client_order_id="cli-1", account_id="acc-8")),
    ),
    Case(
        "repeated",
        R.DUPLICATE_CLIENT_ORDER_ID,
        buy("0.25"),
        True,
        (REF, before(0, 10, client_order_id="cli-1")),
        ("client_order_id cli-1", "acc-7"),
    ),
    Case(
        "repeated-of-a-rejected-order",
        R.DUPLICATE_CLIENT_ORDER_ID,
        buy("0.25"),
        True,
        (REF, before(0, 10, client_order_id="cli-1", quantity=D(9))),
        ("cli-1",),
    ),
    #
    Case("released", R.KILL_SWITCH, buy("0.25"), False, (REF, kill_switch(True, T - 20 * MS), kill_switch(False, T))),
    Case("engaged", R.KILL_SWITCH, buy("0.25"), True, (REF, kill_switch(True, T - 20 * MS)), ("kill switch",)),
    #
    Case("within", R.ORDER_RATE, buy("0.25"), False, (REF, RATE, before(2, 10))),
    Case(
        "over",
        R.ORDER_RATE,
        buy("0.25"),
        True,
        (REF, RATE, before(2, 10), before(3, 20)),
        ("3 orders in the trailing 1 s", "max_orders_per_second 2"),
    ),
    Case(  # the window is (t - 1 s, t]: order 2, exactly 1 s older, is out of it
        "window-slides",
        R.ORDER_RATE,
        buy("0.25", at=Q0.at + 1010 * MS),
        False,
        (REF, RATE, before(2, 10), before(3, 20)),
    ),
    Case(
        "rejected-orders-do-not-count",
        R.ORDER_RATE,
        buy("0.25"),
        False,
        (REF, RATE, before(2, 10, instrument="DOGEUSDT"), before(3, 20, quantity=D(9))),
    ),
    #
    Case("present", R.REFERENCE_PRICE_MISSING, buy("0.25"), False),
    Case("none", R.REFERENCE_PRICE_MISSING, buy("0.25"), True, (), ("no reference price for BTCUSDT",)),
    Case(
        "only-other-instruments",
        R.REFERENCE_PRICE_MISSING,
        buy("0.25"),
        True,
        (price_tick("EURUSD", "1.12345", Q0.at),),
    ),
    Case("market-order-too", R.REFERENCE_PRICE_MISSING, buy("0.25", None), True, ()),
    #
    Case("at-max-age", R.REFERENCE_PRICE_STALE, buy("0.25", at=Q0.at + 5000 * MS), False),
    Case(
        "beyond-max-age",
        R.REFERENCE_PRICE_STALE,
        buy("0.25", at=Q0.at + 5001 * MS),
        True,
        mentions=("5001 ms", "reference_max_age_ms 5000", "2021-01-08T00:00:01.076000+00:00"),
    ),
    Case(
        "latest-real-quote-at-max-age",
        R.REFERENCE_PRICE_STALE,
        buy("0.25", "39490.00", at=LAST.at + 5000 * MS),
        False,
        ALL_QUOTES,
    ),
    Case(
        "latest-real-quote-beyond",
        R.REFERENCE_PRICE_STALE,
        buy("0.25", "39490.00", at=LAST.at + 5000 * MS + timedelta(microseconds=1)),
        True,
        ALL_QUOTES,
        ("5000.001 ms",),
    ),
    Case(
        "account-allows-older",
        R.REFERENCE_PRICE_STALE,
        buy("0.25", at=Q0.at + 30_000 * MS),
        False,
        (REF, set_limits(reference_max_age_ms=60_000)),
    ),
    #  500 bp of 39433.305 is 1971.66525: limit prices from 37461.63975 to 41404.97025 pass
    Case("buy-at-edge", R.PRICE_COLLAR, buy("0.25", "41404.97"), False),
    Case(
        "buy-beyond",
        R.PRICE_COLLAR,
        buy("0.25", "41404.98"),
        True,
        mentions=("41404.98000000", "500.0025 bps", "39433.30500000", "price_collar_bps 500"),
    ),
    Case("sell-at-edge", R.PRICE_COLLAR, sell("0.25", "37461.64"), False),
    Case("sell-beyond", R.PRICE_COLLAR, sell("0.25", "37461.63"), True, mentions=("37461.63000000",)),
    #  10 bp of the last real quote's mid, 39490.975: up to 39530.465975 (the first quote's mid would refuse it)
    Case(
        "latest-quote-decides",
        R.PRICE_COLLAR,
        buy("0.25", "39530.46", at=LAST.at + 100 * MS),
        False,
        (*ALL_QUOTES, set_limits(price_collar_bps=10)),
    ),
    Case(
        "latest-quote-beyond",
        R.PRICE_COLLAR,
        buy("0.25", "39530.47", at=LAST.at + 100 * MS),
        True,
        (*ALL_QUOTES, set_limits(price_collar_bps=10)),
        ("39490.97500000", "price_collar_bps 10"),
    ),
    #  max_order_notional 10,000
    Case("limit-within", R.MAX_ORDER_NOTIONAL, buy("0.25", "39433.31"), False, (REF, PER_ORDER_NOTIONAL)),
    Case(
        "limit-over",
        R.MAX_ORDER_NOTIONAL,
        buy("0.26", "39433.31"),
        True,
        (REF, PER_ORDER_NOTIONAL),
        ("notional 10252.66060000", "max_order_notional 10000.00000000"),
    ),
    Case("market-within", R.MAX_ORDER_NOTIONAL, buy("0.25", None), False, (REF, PER_ORDER_NOTIONAL)),
    Case(
        "market-valued-at-reference",
        R.MAX_ORDER_NOTIONAL,
        buy("0.26", None),
        True,
        (REF, PER_ORDER_NOTIONAL),
        ("notional 10252.65930000", "price 39433.30500000"),
    ),
    #  max_position_quantity 20
    Case("up-to-limit", R.MAX_POSITION, buy("0.1"), False, (REF, pos("19.9"))),
    Case(
        "beyond",
        R.MAX_POSITION,
        buy("0.2"),
        True,
        (REF, pos("19.9")),
        ("would be 20.10000000", "max_position_quantity 20.00000000"),
    ),
    Case(
        "working-same-side-counts",
        R.MAX_POSITION,
        buy("0.6"),
        True,
        (REF, pos("18"), before(2, 10, quantity=D("1.5"))),
        ("20.10000000",),
    ),
    Case(
        "working-other-side-does-not",
        R.MAX_POSITION,
        buy("1.9"),
        False,
        (REF, pos("18"), before(2, 10, Side.SELL, quantity=D("1.5"))),
    ),
    Case("short-beyond", R.MAX_POSITION, sell("0.2"), True, (REF, pos("-19.9")), ("-20.10000000",)),
    Case("reducing-while-beyond", R.MAX_POSITION, sell("3"), False, (REF, pos("25"))),
    Case("adding-while-beyond", R.MAX_POSITION, buy("0.000001"), True, (REF, pos("25"))),
    #  max_open_notional 20,000; an order of 0.25 at 39433.31 is 9858.3275
    Case(
        "within",
        R.MAX_OPEN_NOTIONAL,
        buy("0.25", "39433.31"),
        False,
        (REF, OPEN_NOTIONAL, before(2, 10, quantity=D("0.25"), limit_price=D("39433.31"))),
    ),
    Case(
        "over",
        R.MAX_OPEN_NOTIONAL,
        buy("0.26", "39433.31"),
        True,
        (REF, OPEN_NOTIONAL, before(2, 10, quantity=D("0.25"), limit_price=D("39433.31"))),
        ("9858.32750000 + this order's 10252.66060000 = 20110.98810000", "max_open_notional 20000.00000000"),
    ),
    Case(
        "both-sides-count",
        R.MAX_OPEN_NOTIONAL,
        buy("0.26", "39433.31"),
        True,
        (REF, OPEN_NOTIONAL, before(2, 10, Side.SELL, quantity=D("0.25"), limit_price=D("39433.31"))),
    ),
    Case(  # 11,234.5 USD working on EURUSD and 10,252.66 USDT: each currency within 20,000
        "per-quote-currency",
        R.MAX_OPEN_NOTIONAL,
        buy("0.26", "39433.31"),
        False,
        (
            REF,
            set_limits(max_open_notional=D(20_000), max_order_quantity=D(10_000), max_position_quantity=D(10_000)),
            price_tick("EURUSD", "1.12345", Q0.at),
            before(2, 10, instrument="EURUSD", quantity=D(10_000), limit_price=D("1.12345")),
        ),
    ),
    #  daily_loss_limit 50,000
    Case("loss-at-limit", R.DAILY_LOSS_LIMIT, buy("0.1"), False, (REF, pos("1", "-50000"))),
    Case(
        "loss-beyond",
        R.DAILY_LOSS_LIMIT,
        buy("0.1"),
        True,
        (REF, pos("1", LOSS)),
        ("-50000.00000001 USDT", "-daily_loss_limit -50000.00000000", "2021-01-08T00:00:00+00:00"),
    ),
    Case("beyond-reducing", R.DAILY_LOSS_LIMIT, sell("0.5"), False, (REF, pos("1", LOSS))),
    Case("beyond-closing", R.DAILY_LOSS_LIMIT, sell("1"), False, (REF, pos("1", LOSS))),
    Case("beyond-crossing-flat", R.DAILY_LOSS_LIMIT, sell("1.5"), True, (REF, pos("1", LOSS))),
    Case("beyond-flat", R.DAILY_LOSS_LIMIT, sell("0.1"), True, (REF, pos("0", LOSS))),
    Case(  # long 1 with 0.8 already being sold: selling 0.5 more would go short
        "beyond-working-sells-count",
        R.DAILY_LOSS_LIMIT,
        sell("0.5"),
        True,
        (REF, pos("1", LOSS), before(2, 10, Side.SELL, quantity=D("0.8"))),
    ),
    Case(  # losses in two currencies are not added up
        "within-per-currency",
        R.DAILY_LOSS_LIMIT,
        buy("0.1"),
        False,
        (REF, pos("1", "-30000", ms=40), pos("0.1", "-30000", instrument="BTC-PERP")),
    ),
    Case(  # but a breach in any currency stops new risk in all of them
        "beyond-in-another-currency",
        R.DAILY_LOSS_LIMIT,
        buy("0.1"),
        True,
        (REF, pos("0.1", LOSS, instrument="BTC-PERP")),
        ("-50000.00000001 USD",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{case.check}-{case.id}" for case in CASES])
def test_check(case: Case) -> None:
    risk = engine()
    feed(risk, case.setup)

    [decision] = risk.handle(case.order)

    if not case.rejected:
        assert isinstance(decision, OrderAccepted), decision
        assert decision == accepted(case.order)
        return
    assert isinstance(decision, OrderRejected), decision
    assert (decision.reason_code, decision.order_id, decision.client_order_id) == (
        case.check,
        case.order.order_id,
        case.order.client_order_id,
    )
    for text in case.mentions:
        assert text in decision.reason
    number = [code for code, _ in NEW_ORDER_CHECKS].index(case.check) + 1
    assert decision.reason.endswith(f"(check {number} of 14 failed; checks stop at the first failure)")
    assert decision.envelope == derived_envelope(OrderRejected, case.order, case.order.order_id, 1)


def test_every_check_has_a_passing_and_a_failing_case() -> None:
    for code, _ in NEW_ORDER_CHECKS:
        assert {case.rejected for case in CASES if case.check is code} == {True, False}, code


def test_the_checks_run_in_the_documented_order() -> None:
    documented = re.findall(r"^\s*\d+\. (\w+)", rules.__doc__ or "", re.MULTILINE)

    assert documented == [code.value for code, _ in NEW_ORDER_CHECKS]


def test_the_first_failing_check_decides_and_the_reason_says_so() -> None:
    # Too large for the account (check 4), and no reference price to check it against (check 8).
    [decision] = engine().handle(buy("6"))

    assert isinstance(decision, OrderRejected)
    assert decision.reason_code == "MAX_ORDER_QUANTITY"
    assert decision.reason == (
        "quantity 6.00000000 exceeds max_order_quantity 5.00000000 "
        "(check 4 of 14 failed; checks stop at the first failure)"
    )


def accepted(order: OrderPlaced) -> OrderAccepted:
    return OrderAccepted(
        envelope=derived_envelope(OrderAccepted, order, order.order_id, 1),
        order_id=order.order_id,
        account_id=order.account_id,
        client_order_id=order.client_order_id,
        instrument=order.instrument,
        side=order.side,
        order_type=order.order_type,
        time_in_force=order.time_in_force,
        quantity=order.quantity,
        limit_price=order.limit_price,
    )
