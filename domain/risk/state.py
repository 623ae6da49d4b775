"""What risk knows, folded from events: the reference price per instrument, and per account its limits, kill switch,
client order ids, recent acceptances, working orders, positions and realized PnL.

Totals that every check needs (working quantity per instrument and side, open notional per quote currency) are kept
up to date as orders change, so a check costs the same with ten working orders as with ten thousand; they are exact
decimal sums, rebuilt from the orders when a snapshot is loaded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from domain.risk.amounts import ZERO, notional
from domain.risk.limits import RiskLimits
from schemas.events import OrderType, Side

RATE_WINDOW = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Reference:
    """The price an instrument's orders are weighed against, and the event time it was observed at."""

    price: Decimal
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder:
    """An order risk accepted that execution has not reported done."""

    order_id: str
    instrument: str
    quote: str
    """The instrument's quote currency: open notional is summed per currency."""
    side: Side
    order_type: OrderType
    quantity: Decimal
    """Total quantity, as the venue last confirmed it."""
    leaves: Decimal
    """Quantity still working."""
    price: Decimal
    """What one unit is valued at: the limit price, or the reference price a MARKET order was accepted at."""
    amend_quantity: Decimal | None = None
    """Total quantity of an amend risk accepted and the venue has not yet confirmed with ``OrderAmended``."""
    amend_price: Decimal | None = None
    """Limit price of that amend."""

    @property
    def limit_price(self) -> Decimal | None:
        return self.price if self.order_type is OrderType.LIMIT else None

    @property
    def filled(self) -> Decimal:
        return self.quantity - self.leaves

    @property
    def exposure_leaves(self) -> Decimal:
        """Leaves to count against limits: while an amend is unconfirmed, the larger of before and after."""
        if self.amend_quantity is None:
            return self.leaves
        return max(self.leaves, self.amend_quantity - self.filled)

    @property
    def exposure_price(self) -> Decimal:
        return self.price if self.amend_price is None else max(self.price, self.amend_price)

    @property
    def exposure_notional(self) -> Decimal:
        return notional(self.exposure_leaves, self.exposure_price)


@dataclass(slots=True)
class RealizedPnl:
    """Cumulative realized PnL of one position, and what it was when the UTC day of its last change began."""

    quote: str
    """The currency it is in: the instrument's quote currency."""
    cumulative: Decimal
    day: date
    at_day_start: Decimal

    def on(self, day: date) -> Decimal:
        """Realized PnL of the position during ``day``: nothing if it has not changed that day."""
        return self.cumulative - self.at_day_start if day == self.day else ZERO


@dataclass(slots=True, kw_only=True)
class AccountRisk:
    """The risk state of one account. Orders change only through ``track`` and ``forget``, which keep totals."""

    account_id: str
    limits: RiskLimits | None = None
    """Set by ``RiskLimitsSet``; ``None`` means the engine's defaults."""
    kill_switch: bool = False
    client_order_ids: set[str] = field(default_factory=set)
    """Every client order id an order of the account was placed with, whatever became of the order."""
    accepted_at: deque[datetime] = field(default_factory=deque)
    """Event times of the orders accepted in the trailing second (older ones are dropped on the next acceptance)."""
    positions: dict[str, Decimal] = field(default_factory=dict)
    realized: dict[str, RealizedPnl] = field(default_factory=dict)
    _orders: dict[str, OpenOrder] = field(default_factory=dict, init=False, repr=False)
    _working: dict[tuple[str, Side], Decimal] = field(default_factory=dict, init=False, repr=False, compare=False)
    _open_notional: dict[str, Decimal] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def open_orders(self) -> Mapping[str, OpenOrder]:
        """Working orders by order id, in the order risk accepted them."""
        return MappingProxyType(self._orders)

    def track(self, order: OpenOrder) -> None:
        """Start tracking an order, or replace what is known of it (it keeps its place in acceptance order)."""
        known = self._orders.get(order.order_id)
        if known is not None:
            self._add(known, -1)
        self._orders[order.order_id] = order
        self._add(order, 1)

    def forget(self, order_id: str) -> None:
        """Stop tracking an order: it is done. Unknown ids are ignored."""
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._add(order, -1)

    def _add(self, order: OpenOrder, sign: int) -> None:
        key = (order.instrument, order.side)
        self._working[key] = self._working.get(key, ZERO) + sign * order.exposure_leaves
        self._open_notional[order.quote] = self._open_notional.get(order.quote, ZERO) + sign * order.exposure_notional

    def working_quantity(self, instrument: str, side: Side) -> Decimal:
        """Leaves of the working orders on one side of an instrument."""
        return self._working.get((instrument, side), ZERO)

    def open_notional(self, quote: str) -> Decimal:
        """Leaves times price of the working orders in instruments quoted in ``quote``."""
        return self._open_notional.get(quote, ZERO)

    def position(self, instrument: str) -> Decimal:
        return self.positions.get(instrument, ZERO)

    def accept(self, order: OpenOrder, at: datetime) -> None:
        """An order was accepted at event time ``at``: track it and count it towards the order rate."""
        self.track(order)
        while self.accepted_at and self.accepted_at[0] <= at - RATE_WINDOW:
            self.accepted_at.popleft()
        self.accepted_at.append(at)

    def accepted_since(self, start: datetime) -> int:
        """Orders accepted after ``start`` (exclusive)."""
        return sum(1 for at in self.accepted_at if at > start)

    def apply_position(self, instrument: str, quote: str, quantity: Decimal, realized: Decimal, day: date) -> None:
        """A position changed on ``day``: its quantity, and its cumulative realized PnL in ``quote``."""
        self.positions[instrument] = quantity
        pnl = self.realized.get(instrument)
        if pnl is None:
            # Seen first: all of its realized PnL counts as the day's, which is exact when the log is read from the
            # start (the first change of a position starts from zero) and errs towards caution otherwise.
            self.realized[instrument] = RealizedPnl(quote, realized, day, ZERO)
            return
        if day > pnl.day:
            pnl.at_day_start, pnl.day = pnl.cumulative, day
        pnl.cumulative = realized

    def realized_on(self, day: date) -> dict[str, Decimal]:
        """Realized PnL of all positions during the UTC ``day``, per currency (amounts in two are not summed)."""
        totals: dict[str, Decimal] = {}
        for pnl in self.realized.values():
            totals[pnl.quote] = totals.get(pnl.quote, ZERO) + pnl.on(day)
        return totals


def amended(order: OpenOrder, quantity: Decimal, limit_price: Decimal | None, leaves: Decimal) -> OpenOrder:
    """``order`` as the venue says an amend left it; an unconfirmed amend stays pending unless this confirms it."""
    price = order.price if limit_price is None else limit_price
    confirms = order.amend_quantity in (None, quantity) and order.amend_price in (None, price)
    return replace(
        order,
        quantity=quantity,
        leaves=leaves,
        price=price,
        amend_quantity=None if confirms else order.amend_quantity,
        amend_price=None if confirms else order.amend_price,
    )
