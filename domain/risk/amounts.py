"""Decimal arithmetic for risk, independent of the caller's decimal context.

Python's ``Decimal`` rounds to the *thread's* context (28 digits by default), so the same sum could differ between a
live processor and a replay that set another context. Risk computes under ``CONTEXT`` alone (the engine enters it
for every event), which holds any ``decimal(28, 8)`` product of a ``decimal(18, 8)`` quantity and price exactly.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
# The schemas' scale for prices, quantities and money.
SCALE = Decimal("0.00000001")
ZERO = Decimal(0)
BPS = Decimal(10_000)


def notional(quantity: Decimal, price: Decimal) -> Decimal:
    """Quantity times price in the quote currency, at the schema scale, rounded up so no limit sees it understated."""
    return CONTEXT.multiply(quantity, price).quantize(SCALE, rounding=ROUND_UP, context=CONTEXT)


def show(value: Decimal) -> str:
    """A value as reasons print it: at the schema's scale, so equal values always read the same."""
    return format(value.quantize(SCALE, context=CONTEXT), "f")
