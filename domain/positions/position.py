"""Position math under average cost: one account's position in one instrument, and what a fill does to it.

Cost method — **average cost** (``AVERAGE_COST``):

* a fill on the side of the position (or opening it) adds to it and moves the average entry price to the
  quantity-weighted mean of the old cost and the fill;
* a fill against the position reduces it and realizes ``(fill price - average) * closed quantity * sign``
  (sign +1 long, -1 short); the average does not move while a position shrinks;
* a fill that closes the position realizes as above (plus the rounding residue, below); one that crosses through
  zero closes the whole position and opens the rest at the fill price; a flat position has an average of zero.

Linear instruments: PnL is a price difference times a quantity, in the quote currency. An inverse contract (Bitmex
XBTUSD, whose PnL is in XBT, ``contracts * (1/entry - 1/exit)``) would need a cost method of its own; this one
treats every instrument as linear.

Realized PnL excludes fees; ``fees_paid`` sums fees separately (a rebate is a negative fee). Both are in one
currency, assumed to be the instrument's quote currency, and neither resets when the position goes flat. The first
fill fixes the currency the position's fees are summed in; a fill with a fee in another currency is refused rather
than added into a number that would mean nothing.

Rounding and the residue policy. All arithmetic is exact ``Decimal`` arithmetic (prices, quantities and fees have
at most 8 decimal places, so products have at most 16, and nothing is ever rounded by a context). Two values are
rounded, both to the schema's 8 decimal places with ``ROUND_HALF_EVEN``:

* the **average price**, whenever the position grows: ``average = round8(cost_basis / quantity)``, computed as
  one exact rational division and one rounding, never a double rounding;
* the **published realized PnL**, ``round8(realized_pnl)``, when an event is written.

``cost_basis`` is the exact signed cost of the open quantity. What the 8-place average leaves out of it, the
*residue* ``cost_basis - quantity * average_price`` (under half a unit of the 8th place per unit held when the
position last grew), stays in ``cost_basis``: it is folded into the next average when the position grows, and it is
realized when the position closes, since a close realizes ``quantity * price - cost_basis``, which is
``(price - average) * closed * sign - residue``. Partial reductions realize exactly the formula above and leave the
residue in place. ``realized_pnl`` itself is kept exact and only rounded on output. So rounding never accumulates:
after any history, the realized PnL in an event is within half a unit of the 8th place of the exact figure, and
whenever a position is flat its realized PnL is the net cash of its trades,
``sum(sell quantity * price) - sum(buy quantity * price)``, rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction

from domain.positions.errors import InvalidFillError, PositionsError
from schemas.events import Side

COST_METHOD = "AVERAGE_COST"
SCALE = 8  # decimal places of every price, quantity and money field of the schemas
ROUNDING = ROUND_HALF_EVEN

_QUANTUM = Decimal(1).scaleb(-SCALE)
_ZERO = Decimal(0)
# Inputs have at most 20 integer digits and 8 decimal places, so every sum and product fits in 100 digits: exact.
# Inexact is trapped so that a value breaking that bound fails loudly instead of being rounded silently.
_MAX_INTEGER_DIGITS = 20
_EXACT = Context(prec=100, rounding=ROUNDING, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
_ROUND = Context(prec=100, rounding=ROUNDING, traps=[InvalidOperation, DivisionByZero, Overflow])


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """An account's position in an instrument: exact state, as a value; ``after_fill`` returns the next one."""

    account_id: str
    instrument: str
    quantity: Decimal = _ZERO
    """Signed: positive long, negative short, zero flat."""
    average_price: Decimal = _ZERO
    """Average entry price at 8 places (half-even); zero when flat."""
    cost_basis: Decimal = _ZERO
    """Exact signed cost of the open quantity: ``quantity * average_price`` plus the rounding residue."""
    realized_pnl: Decimal = _ZERO
    """Cumulative realized PnL, exact (up to 16 places), fees excluded; round with ``to_scale`` to publish."""
    fees_paid: Decimal = _ZERO
    """Cumulative fees, exact; rebates are negative fees."""
    fee_currency: str | None = None
    """Currency of ``fees_paid``, fixed by the first fill; None before it."""

    @property
    def is_flat(self) -> bool:
        """No quantity held, long or short."""
        return self.quantity == 0

    def after_fill(self, *, side: Side, quantity: Decimal, price: Decimal, fee: Decimal, fee_currency: str) -> Position:
        """The position after a fill of ``quantity`` (positive) at ``price`` on ``side``, with its fee.

        Raises:
            InvalidFillError: a value is not finite, has more than 8 places or 20 integer digits, the quantity is not
                positive, or the fee is in another currency than this position's fees.
        """
        quantity = _checked("fill_quantity", quantity)
        price = _checked("fill_price", price)
        fee = _checked("fee", fee)
        if quantity <= 0:
            raise InvalidFillError(f"fill_quantity {quantity} is not positive")
        if self.fee_currency is not None and fee_currency != self.fee_currency:
            raise InvalidFillError(
                f"fee in {fee_currency!r}, but the fees of {self.account_id}/{self.instrument} are summed in "
                f"{self.fee_currency!r}; a position sums its fees in one currency, the instrument's quote currency"
            )

        with localcontext(_EXACT):
            signed = quantity if side is Side.BUY else -quantity
            held = self.quantity
            after = held + signed
            realized = self.realized_pnl
            if held == 0 or (held > 0) == (signed > 0):
                # Opening or adding: the average moves, nothing is realized.
                cost = self.cost_basis + signed * price
                average = _average(cost, after)
            elif after != 0 and (after > 0) == (held > 0):
                # Reducing: realize the closed part at the average, which stays; the residue stays in the cost.
                closed = -signed
                realized += closed * (price - self.average_price)
                cost = self.cost_basis - closed * self.average_price
                average = self.average_price
            else:
                # Closing, and opening the rest (if any) at the fill price: the whole cost, residue and all, goes.
                realized += held * price - self.cost_basis
                cost = after * price
                average = price if after != 0 else _ZERO
            return replace(
                self,
                quantity=after,
                average_price=average,
                cost_basis=cost,
                realized_pnl=realized,
                fees_paid=self.fees_paid + fee,
                fee_currency=fee_currency,
            )


def mark_to_market(position: Position, mark_price: Decimal) -> Decimal:
    """Unrealized PnL of ``position`` at ``mark_price``, at 8 places (half-even); zero when flat.

    It is exactly what closing the whole position at ``mark_price`` would add to the realized PnL (residue
    included), so realized plus unrealized is the same total PnL whichever way a position is valued.
    """
    if not isinstance(mark_price, Decimal) or not mark_price.is_finite():
        raise PositionsError(f"mark price {mark_price!r} is not a finite decimal")
    with localcontext(_ROUND):
        return to_scale(position.quantity * mark_price - position.cost_basis)


def to_scale(value: Decimal) -> Decimal:
    """``value`` at the schemas' 8 decimal places, rounded half-even: how a value is published."""
    return value.quantize(_QUANTUM, rounding=ROUNDING, context=_ROUND)


def _average(cost: Decimal, quantity: Decimal) -> Decimal:
    # An exact rational quotient and a single rounding: a Decimal division would round once to the context's
    # precision and again to 8 places, and that double rounding can fall on the wrong side of a half.
    # round() of a Fraction rounds half to even.
    units = round(Fraction(cost) / Fraction(quantity) * 10**SCALE)
    return Decimal(units).scaleb(-SCALE, context=_EXACT)


def _checked(name: str, value: Decimal) -> Decimal:
    """``value`` at exactly 8 places (so every state value has a non-positive exponent), or InvalidFillError."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidFillError(f"{name} {value!r} is not a finite decimal")
    if value and value.adjusted() >= _MAX_INTEGER_DIGITS:
        raise InvalidFillError(f"{name} {value} has more than {_MAX_INTEGER_DIGITS} integer digits")
    try:
        return value.quantize(_QUANTUM, context=_EXACT)
    except Inexact:
        raise InvalidFillError(f"{name} {value} has more than {SCALE} decimal places") from None
