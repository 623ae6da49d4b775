"""An independent average-cost fold, to check ``PositionBook`` against: integers over a polars frame, no Decimal.

It shares the book's policy (average rounded half-even to 8 places whenever the position grows; the rounding
residue stays in the cost basis until the position closes) but not its arithmetic or its shape. Amounts are integer
units (quantities and prices of 1e-8, cash and cost of 1e-16), and realized PnL is never computed by the
``(price - average) * closed`` formula: it is the cash identity ``realized = cash + cost basis`` (what the trades
paid and received, plus the cost of what is still held). Quantity and fees are plain column sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from schemas.events import OrderFilled, Side

UNIT = 10**8


@dataclass(frozen=True)
class Step:
    """The position after one fill, in integer units; ``realized`` and ``cash`` are exact (1e-16 units)."""

    quantity: int
    average: int
    cost: int
    cash: int
    realized: int
    fees: int

    @property
    def published_realized(self) -> int:
        """Realized PnL at 8 places (1e-8 units), rounded half-even once, as an event carries it."""
        return half_even(self.realized, UNIT)


def frame(fills: list[OrderFilled]) -> pl.DataFrame:
    """One row per fill: signed quantity, price and fee in 1e-8 units."""
    return pl.DataFrame(
        {
            "quantity": [units(f.fill_quantity) * (1 if f.side is Side.BUY else -1) for f in fills],
            "price": [units(f.fill_price) for f in fills],
            "fee": [units(f.fee) for f in fills],
        },
        schema={"quantity": pl.Int64, "price": pl.Int64, "fee": pl.Int64},
    )


def fold(fills: pl.DataFrame) -> list[Step]:
    """The position after each fill of ``fills`` (a ``frame``)."""
    quantity = average = cost = cash = fees = 0
    steps: list[Step] = []
    for signed, price, fee in fills.select("quantity", "price", "fee").iter_rows():
        cash -= signed * price
        fees += fee
        after = quantity + signed
        if quantity == 0 or (quantity > 0) == (signed > 0):
            cost += signed * price
            average = half_even(cost, after)
        elif abs(signed) < abs(quantity):
            cost += signed * average  # what leaves the cost basis is the closed quantity at the average
        elif after == 0:
            cost, average = 0, 0
        else:
            cost, average = after * price, price
        quantity = after
        steps.append(Step(quantity, average, cost, cash, cash + cost, fees))
    return steps


def half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to an integer, ties to even."""
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def units(value: Decimal, scale: int = UNIT) -> int:
    """``value`` in integer units of 1/scale; it must be exact."""
    numerator, denominator = (value * scale).as_integer_ratio()
    assert denominator == 1, f"{value} is not a whole number of 1/{scale}"
    return numerator
