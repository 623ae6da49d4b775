"""What risk knows, folded from events: the reference price per instrument, and per account its limits, kill switch,
recent client order ids, recent acceptances, working orders, recently finished orders, positions and realized PnL.

What grows with history is forgotten once no rule needs it (``AccountRisk.forget_before``): client order ids and
finished orders are kept for the order memory (``lifecycle.ORDER_MEMORY`` by default) of the account's event time
(docs/STREAMS.md, "What state is kept, and for how long"), so an account's state is bounded by what it did in that
window and what is still working.

Totals that every check needs (working quantity per instrument and side, open notional per quote currency) are kept
up to date as orders change, so a check costs the same with ten working orders as with ten thousand; they are exact
decimal sums, rebuilt from the orders when a snapshot is loaded.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from collections.abc import Mapping, Sequence
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


MAX_REFERENCES = 256  # per instrument; ticks dated ahead of the present beyond this are dropped, farthest first


def _at(reference: Reference) -> datetime:
    return reference.at


def reference_at(history: Sequence[Reference], at: datetime) -> Reference | None:
    """The latest reference observed at or before ``at`` (before the first one, the first: staleness judges it).

    Never a later one: a tick dated in the future must not stand in for the present, or it would make every order
    placed before its time stale.
    """
    if not history:
        return None
    i = bisect_right(history, at, key=_at)
    return history[i - 1] if i else history[0]


def observe(history: list[Reference], reference: Reference, recorded_at: datetime) -> None:
    """Keep ``reference`` in ``history`` (ordered by event time), recorded by the server at ``recorded_at``.

    What came before the latest reference at or before ``recorded_at`` no longer serves: orders are stamped by the
    server's clock, so none can arrive dated before the present that ``recorded_at`` attests. What remains is the
    present reference and those dated ahead of it, bounded by ``MAX_REFERENCES``.
    """
    insort(history, reference, key=_at)
    present = bisect_right(history, recorded_at, key=_at) - 1
    if present > 0:
        del history[:present]
    del history[MAX_REFERENCES:]


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
    now: datetime | None = None
    """The account's event time: the latest ``occurred_at`` of its inputs on ``orders`` (stamped by the server's clock,
    so it only moves forward by what really passed; execution reports carry exchange times and do not move it)."""
    client_order_ids: dict[str, datetime] = field(default_factory=dict)
    """Client order ids the account placed orders with, whatever became of them, each with the account's event time
    when it was last placed; oldest first. Kept for the order memory."""
    finished: dict[str, datetime] = field(default_factory=dict)
    """Orders of the account risk holds a sequence for that are not working (rejected, done, or asked about after),
    with the account's event time of the last such event; oldest first. Kept for the order memory, so a late cancel
    or amend continues the order's stream of ``orders.checked``."""
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

    def forget(self, order_id: str, at: datetime) -> None:
        """Stop tracking an order: it is done (at event time ``at``). Unknown ids are ignored."""
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._add(order, -1)
            self.touch(order_id, at)

    def advance(self, at: datetime) -> datetime:
        """The account saw an input on ``orders`` at event time ``at``; its event time now."""
        if self.now is None or at > self.now:
            self.now = at
        return self.now

    def placed(self, client_order_id: str, at: datetime) -> None:
        """``client_order_id`` was used at the account's event time ``at`` (it moves to the back: newest)."""
        self.client_order_ids.pop(client_order_id, None)
        self.client_order_ids[client_order_id] = at

    def touch(self, order_id: str, at: datetime) -> None:
        """Risk derived an event for ``order_id``, not working, at event time ``at`` (newest now)."""
        self.finished.pop(order_id, None)
        self.finished[order_id] = at

    def forget_before(self, cutoff: datetime) -> list[str]:
        """Forget client order ids and finished orders last seen at or before ``cutoff``; the order ids forgotten.

        Both maps are in the order of the account's event time, which never goes back, so this stops at the first
        entry it keeps: the cost is the entries forgotten, not the entries kept.
        """
        ids = self.client_order_ids
        while ids and next(iter(ids.values())) <= cutoff:
            del ids[next(iter(ids))]
        gone: list[str] = []
        while self.finished and next(iter(self.finished.values())) <= cutoff:
            order_id = next(iter(self.finished))
            del self.finished[order_id]
            gone.append(order_id)
        return gone

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
        self.finished.pop(order.order_id, None)
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
