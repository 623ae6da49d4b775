"""The pre-trade checks: pure functions of a ``Candidate`` (an order, or an order as an amend would leave it, with
everything it is weighed against) that return why it fails, or ``None``.

A new order is checked in this order, and the first failure decides (its reason says so: later checks are not run,
and a check may rely on the ones before it — the collar on a fresh reference price, quantities on a known
instrument):

 1. INSTRUMENT_NOT_TRADABLE    in the registry and tradable
 2. QUANTITY                   within the instrument's min and max, a multiple of its lot
 3. PRICE                      a LIMIT order has a positive limit price on the tick; a MARKET order has none
 4. MAX_ORDER_QUANTITY
 5. DUPLICATE_CLIENT_ORDER_ID  not used by the account for another order within the order memory (24 h of its event
                               time by default), whatever became of that order (a repeat of an order's own placement
                               is no new order: the engine decides it once)
 6. KILL_SWITCH
 7. ORDER_RATE                 at most max_orders_per_second accepted in the trailing second of event time
 8. REFERENCE_PRICE_MISSING
 9. REFERENCE_PRICE_STALE      observed within reference_max_age_ms of the order's event time
10. PRICE_COLLAR               a limit price within price_collar_bps of the reference
11. MAX_ORDER_NOTIONAL         quantity times price; a MARKET order is valued at the reference
12. MAX_POSITION               position plus working orders on the same side plus this one
13. MAX_OPEN_NOTIONAL          working orders' leaves times price in the order's quote currency, this one included
14. DAILY_LOSS_LIMIT           realized PnL since 00:00 UTC, in any currency, not below -daily_loss_limit

An amend skips 5 and 7 (settled when the order was placed) and is refused with ORDER_NOT_OPEN first if risk does not
hold the order open; it is checked as the order would stand after it, the collar applying only to a new price.

Limits on one order (quantity, notional) apply as they are; limits on exposure (position, open notional, daily loss)
refuse only what adds to it, so an order or amend that reduces exposure is never blocked by a limit the account
already exceeds — e.g. after its limits were lowered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.instruments import Instrument
from domain.risk.amounts import BPS, CONTEXT, ZERO, notional, show
from domain.risk.limits import RiskLimits
from domain.risk.state import RATE_WINDOW, AccountRisk, OpenOrder, Reference
from schemas.events import OrderType, Side


class ReasonCode(StrEnum):
    """Why risk refused an order or an amend: the ``reason_code`` of ``OrderRejected`` and ``AmendRejected``."""

    ORDER_NOT_OPEN = "ORDER_NOT_OPEN"
    INSTRUMENT_NOT_TRADABLE = "INSTRUMENT_NOT_TRADABLE"
    QUANTITY = "QUANTITY"
    PRICE = "PRICE"
    MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    KILL_SWITCH = "KILL_SWITCH"
    ORDER_RATE = "ORDER_RATE"
    REFERENCE_PRICE_MISSING = "REFERENCE_PRICE_MISSING"
    REFERENCE_PRICE_STALE = "REFERENCE_PRICE_STALE"
    PRICE_COLLAR = "PRICE_COLLAR"
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    MAX_POSITION = "MAX_POSITION"
    MAX_OPEN_NOTIONAL = "MAX_OPEN_NOTIONAL"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: ReasonCode
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """An order as risk weighs it — new, or working as an amend would leave it — and what it is weighed against."""

    order_id: str
    client_order_id: str | None
    """Set for new orders only: amends keep the order's."""
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    """Total quantity."""
    leaves: Decimal
    """Quantity that would be working: the quantity of a new order; of an amended one, the new total less fills."""
    limit_price: Decimal | None
    price_is_new: bool
    """The collar applies to a price being set: a new order's, or an amend's new limit price."""
    at: datetime
    """Event time of the order or amend: every time-based check measures from it."""
    account: AccountRisk
    limits: RiskLimits
    instrument: Instrument | None
    reference: Reference | None
    replaces: OpenOrder | None = None
    """For an amend: the working order as risk knows it."""

    @property
    def price(self) -> Decimal:
        """What one unit is valued at: the limit price, or for a MARKET order the reference price."""
        if self.order_type is OrderType.LIMIT and self.limit_price is not None:
            return self.limit_price
        assert self.reference is not None, "valued only after the reference checks passed"
        return self.reference.price

    @property
    def known_instrument(self) -> Instrument:
        assert self.instrument is not None, "used only after the instrument check passed"
        return self.instrument


Check = Callable[[Candidate], str | None]


def check_instrument_tradable(c: Candidate) -> str | None:
    if c.instrument is None:
        return f"instrument {c.symbol} is not in the instrument registry"
    if not c.instrument.tradable:
        return f"instrument {c.symbol} is not tradable now"
    return None


def check_quantity(c: Candidate) -> str | None:
    instrument = c.known_instrument
    if c.replaces is not None and c.leaves <= 0:
        return f"new quantity {show(c.quantity)} is not above the {show(c.replaces.filled)} already filled"
    if c.quantity < instrument.min_quantity:
        return f"quantity {show(c.quantity)} is below the minimum {instrument.min_quantity:f} of {c.symbol}"
    if c.quantity > instrument.max_quantity:
        return f"quantity {show(c.quantity)} is above the maximum {instrument.max_quantity:f} of {c.symbol}"
    if not instrument.on_lot(c.quantity):
        return f"quantity {show(c.quantity)} is not a multiple of the lot size {instrument.lot_size:f} of {c.symbol}"
    return None


def check_price(c: Candidate) -> str | None:
    if c.order_type is OrderType.MARKET:
        if c.limit_price is not None:
            return f"a MARKET order takes no limit price, got {show(c.limit_price)}"
        return None
    if c.limit_price is None:
        return "a LIMIT order needs a limit price"
    if c.limit_price <= 0:
        return f"limit price {show(c.limit_price)} is not positive"
    if not c.known_instrument.on_tick(c.limit_price):
        tick = c.known_instrument.tick_size
        return f"limit price {show(c.limit_price)} is not a multiple of the tick size {tick:f} of {c.symbol}"
    return None


def check_max_order_quantity(c: Candidate) -> str | None:
    if c.quantity > c.limits.max_order_quantity:
        return f"quantity {show(c.quantity)} exceeds max_order_quantity {show(c.limits.max_order_quantity)}"
    return None


def check_duplicate_client_order_id(c: Candidate) -> str | None:
    """Taken: used within the order memory (``state.ORDER_MEMORY``)."""
    if c.client_order_id in c.account.client_order_ids:
        return f"client_order_id {c.client_order_id} was already used by account {c.account.account_id}"
    return None


def check_kill_switch(c: Candidate) -> str | None:
    if c.account.kill_switch:
        return f"the kill switch of account {c.account.account_id} is engaged: nothing new until it is released"
    return None


def check_order_rate(c: Candidate) -> str | None:
    """Orders accepted in (t - 1 s, t], this one included. Rejected orders do not count: they never reach the market,
    and a throttled client gets through again as soon as its accepted orders age out of the window."""
    count = c.account.accepted_since(c.at - RATE_WINDOW) + 1
    if count > c.limits.max_orders_per_second:
        return (
            f"{count} orders in the trailing 1 s of event time, this one included, "
            f"exceed max_orders_per_second {c.limits.max_orders_per_second}"
        )
    return None


def check_reference_price_missing(c: Candidate) -> str | None:
    if c.reference is None:
        return f"no reference price for {c.symbol} yet; risk decides only against a fresh one"
    return None


def check_reference_price_stale(c: Candidate) -> str | None:
    """Age is measured either way in event time: a reference observed just after the order is as good as one just
    before it (the venue's clock and ours need not agree to the millisecond)."""
    assert c.reference is not None
    age = abs(c.at - c.reference.at)
    if age > timedelta(milliseconds=c.limits.reference_max_age_ms):
        age_ms = CONTEXT.divide(Decimal(age // timedelta(microseconds=1)), Decimal(1000))
        return (
            f"the reference price of {c.symbol} was observed at {c.reference.at.isoformat()}, {age_ms:f} ms from the "
            f"order's event time, beyond reference_max_age_ms {c.limits.reference_max_age_ms}"
        )
    return None


def check_price_collar(c: Candidate) -> str | None:
    """Symmetric, inclusive: a limit price exactly price_collar_bps away passes. Compared without division."""
    if c.order_type is not OrderType.LIMIT or not c.price_is_new:
        return None
    assert c.limit_price is not None and c.reference is not None
    reference = c.reference.price
    distance = abs(c.limit_price - reference)
    if distance * BPS > reference * c.limits.price_collar_bps:
        bps = (distance * BPS / reference).quantize(Decimal("0.0001"))
        return (
            f"limit price {show(c.limit_price)} is {bps:f} bps from the reference price {show(reference)}, "
            f"beyond price_collar_bps {c.limits.price_collar_bps}"
        )
    return None


def check_max_order_notional(c: Candidate) -> str | None:
    value = notional(c.quantity, c.price)
    if value > c.limits.max_order_notional:
        return (
            f"notional {show(value)} (quantity {show(c.quantity)} at price {show(c.price)}) "
            f"exceeds max_order_notional {show(c.limits.max_order_notional)}"
        )
    return None


def position_projection(c: Candidate) -> tuple[Decimal, Decimal]:
    """The position if every working order on the candidate's side filled: as things stand (an amended order as it
    is), and as they would stand if the candidate were accepted (the amended order as the amend leaves it)."""
    sign = 1 if c.side is Side.BUY else -1
    position = c.account.position(c.symbol)
    same_side = c.account.working_quantity(c.symbol, c.side)
    others = same_side - (c.replaces.exposure_leaves if c.replaces is not None else ZERO)
    return position + sign * same_side, position + sign * (others + c.leaves)


def reduces_position(before: Decimal, after: Decimal) -> bool:
    """Whether a position goes from ``before`` to ``after`` only towards flat, without crossing it."""
    return abs(after) < abs(before) and (after == 0 or (after > 0) == (before > 0))


def check_max_position(c: Candidate) -> str | None:
    """Working orders on the other side are not counted: they may never fill, and would only make room."""
    before, after = position_projection(c)
    limit = c.limits.max_position_quantity
    if abs(after) > limit and abs(after) > abs(before):
        side = "buys" if c.side is Side.BUY else "sells"
        return (
            f"position {show(c.account.position(c.symbol))} with the working {side} and this order's "
            f"{show(c.leaves)} would be {show(after)}, beyond max_position_quantity {show(limit)}"
        )
    return None


def check_max_open_notional(c: Candidate) -> str | None:
    """Summed per quote currency: USDT, USD and JPY amounts are not added together (risk has no FX rates)."""
    quote = c.known_instrument.quote
    before = c.account.open_notional(quote)
    others = before - (c.replaces.exposure_notional if c.replaces is not None else ZERO)
    this = notional(c.leaves, c.price)
    after = others + this
    limit = c.limits.max_open_notional
    if after > limit and after > before:
        return (
            f"open notional in {quote} {show(others)} + this order's {show(this)} = {show(after)} "
            f"exceeds max_open_notional {show(limit)}"
        )
    return None


def check_daily_loss_limit(c: Candidate) -> str | None:
    """Once realized PnL today is below -daily_loss_limit in any currency, only what reduces a position towards flat
    (without crossing it), or shrinks an amended order, is accepted."""
    day = c.at.astimezone(UTC).date()
    limit = c.limits.daily_loss_limit
    breached = sorted((quote, pnl) for quote, pnl in c.account.realized_on(day).items() if pnl < -limit)
    if not breached:
        return None
    before, after = position_projection(c)
    if reduces_position(before, after) or (c.replaces is not None and c.leaves <= c.replaces.exposure_leaves):
        return None
    start = datetime.combine(day, time(), UTC).isoformat()
    losses = ", ".join(f"{show(pnl)} {quote}" for quote, pnl in breached)
    return (
        f"realized PnL since {start} is {losses}, below -daily_loss_limit {show(-limit)}: "
        f"only orders that reduce a position towards flat are accepted"
    )


NEW_ORDER_CHECKS: Sequence[tuple[ReasonCode, Check]] = (
    (ReasonCode.INSTRUMENT_NOT_TRADABLE, check_instrument_tradable),
    (ReasonCode.QUANTITY, check_quantity),
    (ReasonCode.PRICE, check_price),
    (ReasonCode.MAX_ORDER_QUANTITY, check_max_order_quantity),
    (ReasonCode.DUPLICATE_CLIENT_ORDER_ID, check_duplicate_client_order_id),
    (ReasonCode.KILL_SWITCH, check_kill_switch),
    (ReasonCode.ORDER_RATE, check_order_rate),
    (ReasonCode.REFERENCE_PRICE_MISSING, check_reference_price_missing),
    (ReasonCode.REFERENCE_PRICE_STALE, check_reference_price_stale),
    (ReasonCode.PRICE_COLLAR, check_price_collar),
    (ReasonCode.MAX_ORDER_NOTIONAL, check_max_order_notional),
    (ReasonCode.MAX_POSITION, check_max_position),
    (ReasonCode.MAX_OPEN_NOTIONAL, check_max_open_notional),
    (ReasonCode.DAILY_LOSS_LIMIT, check_daily_loss_limit),
)

# An amend is not a new order: its client order id and its place in the order rate were settled when it was placed.
# (Before these, the engine refuses with ORDER_NOT_OPEN an amend of an order it does not hold open.)
AMEND_CHECKS: Sequence[tuple[ReasonCode, Check]] = tuple(
    (code, check)
    for code, check in NEW_ORDER_CHECKS
    if code not in (ReasonCode.DUPLICATE_CLIENT_ORDER_ID, ReasonCode.ORDER_RATE)
)


def first_failure(checks: Sequence[tuple[ReasonCode, Check]], candidate: Candidate) -> Rejection | None:
    """The first check ``candidate`` fails, its reason saying that later checks were not evaluated; else ``None``."""
    for number, (code, check) in enumerate(checks, start=1):
        detail = check(candidate)
        if detail is not None:
            return Rejection(
                code, f"{detail} (check {number} of {len(checks)} failed; checks stop at the first failure)"
            )
    return None
