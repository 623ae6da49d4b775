"""The matching rules as pure functions: when a price reaches an order, what a market order pays, fees, sharing."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from schemas.events import Side

# Price and fee arithmetic must not depend on the caller's decimal context: 38 digits hold price x quantity x bps
# of any decimal(18, 8) operands exactly, and an inexact or impossible step raises instead of rounding quietly.
EXACT = Context(prec=38, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
BPS = Decimal(10_000)
SCALE = Decimal("1E-8")  # decimal(18, 8) and decimal(28, 8): what every price, quantity and fee is written with


def scaled(value: Decimal) -> Decimal:
    """``value`` with the schema's 8 places (round half even), as every event written by the venue carries it."""
    return value.quantize(SCALE, context=EXACT)


def reaches(side: Side, limit: Decimal, price: Decimal) -> bool:
    """Whether ``price`` is at or better than ``limit`` for an order of ``side`` (a quote that crosses it)."""
    return price <= limit if side is Side.BUY else price >= limit


def trades_through(side: Side, limit: Decimal, price: Decimal) -> bool:
    """Whether a trade at ``price`` is strictly better than ``limit`` for an order of ``side``.

    A print at the limit itself is not enough: orders resting at that price before ours were ahead in the queue.
    """
    return price < limit if side is Side.BUY else price > limit


def slipped(side: Side, price: Decimal, bps: Decimal, tick: Decimal) -> Decimal:
    """``price`` moved against an order of ``side`` by ``bps``, on the tick grid, rounded away from the order.

    A BUY pays more (rounded up to the next tick), a SELL receives less (rounded down).
    """
    factor = BPS + bps if side is Side.BUY else BPS - bps
    moved = EXACT.divide(EXACT.multiply(price, factor), BPS)
    steps, rest = EXACT.divmod(moved, tick)  # exact: ``rest`` says whether ``moved`` is between two ticks
    if side is Side.BUY and rest:
        steps += 1
    return EXACT.multiply(steps, tick)


def fee(price: Decimal, quantity: Decimal, bps: Decimal) -> Decimal:
    """price x quantity x bps / 10,000, at 8 places (round half even); negative for a rebate."""
    notional = EXACT.multiply(price, quantity)
    return scaled(EXACT.divide(EXACT.multiply(notional, bps), BPS))


def allocate(wanted: Iterable[Decimal], size: Decimal | None) -> list[Decimal]:
    """Share ``size`` (``None``: unlimited) among orders wanting ``wanted``, in priority: each takes all it can.

    The shares go to the first orders, one each, for as long as size is left; those after get nothing.
    """
    shares = []
    left = size
    for quantity in wanted:
        share = quantity if left is None else min(quantity, left)
        if share <= 0:
            break
        shares.append(share)
        if left is not None:
            left -= share
    return shares
