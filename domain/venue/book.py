"""The venue's state for one instrument: the touch, our resting orders in price-time priority, and what is done.

Finished orders are remembered for the order memory of the venue's event time (``Book.forget_before``), so a late
cancel or amend still hears how the order ended; after that the order is unknown again (docs/STREAMS.md, "What
state is kept, and for how long").
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from schemas.events import OrderType, Side, TimeInForce


@dataclass(slots=True)
class Level:
    """One side of the touch, or a trade print: its price and the size still there (``None``: no size was given)."""

    price: Decimal
    size: Decimal | None

    def available(self, wanted: Decimal) -> Decimal:
        """How much of ``wanted`` this level can give: all of it when it has no size."""
        return wanted if self.size is None else min(wanted, max(self.size, Decimal(0)))

    def take(self, quantity: Decimal) -> None:
        """What we trade here is gone until the next quote replaces the level."""
        if self.size is not None:
            self.size -= quantity


@dataclass(slots=True)
class Touch:
    """The best bid and ask of the latest quote; a side the quote did not carry is ``None``."""

    bid: Level | None = None
    ask: Level | None = None

    def facing(self, side: Side) -> Level | None:
        """The level an order of ``side`` trades against: the ask for a BUY, the bid for a SELL."""
        return self.ask if side is Side.BUY else self.bid


@dataclass(slots=True)
class WorkingOrder:
    """An accepted order as the venue works it; ``priority`` orders arrivals (lower is earlier)."""

    order_id: str
    account_id: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None
    filled: Decimal = Decimal(0)
    fills: int = 0
    priority: int = 0

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled


class Outcome(StrEnum):
    """How an order stopped working at the venue."""

    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_Queued = tuple[Decimal, int, str]  # (the limit, negated for a BUY; the arrival; the order id): best first


@dataclass
class Book:
    """The touch, our resting (GTC LIMIT) orders by id, how each recently finished order ended and when (oldest
    first), the arrival counter, and the venue's event time: the latest ``occurred_at`` of its orders (ticks carry
    exchange times and do not move it).

    Every tick asks which resting orders its quote reaches, best first: each side's resting orders are kept sorted
    in price-time priority (``_queues``), so that is the queue's head up to the first order not reached, not a sort
    of every resting order per tick (2 ms a tick with ~800 resting, most of the history generator's time). The
    finished and answered orders are ordered dicts: forgetting the oldest is O(1), where a plain dict scans past
    every key deleted from its front since it last resized.
    """

    touch: Touch = field(default_factory=Touch)
    resting: dict[str, WorkingOrder] = field(default_factory=dict)
    done: OrderedDict[str, tuple[Outcome, datetime]] = field(default_factory=OrderedDict)
    arrivals: int = 0
    now: datetime | None = None
    answered: OrderedDict[str, datetime] = field(default_factory=OrderedDict)
    """Orders the venue never held (risk refused them) that it answered a cancel or amend of, holding a count on
    ``executions``: when it last did, oldest first."""
    _queues: dict[Side, list[_Queued]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._queues = {Side.BUY: [], Side.SELL: []}
        for order in self.resting.values():
            self._enqueue(order)

    def knows(self, order_id: str) -> bool:
        return order_id in self.resting or order_id in self.done

    def stamp_arrival(self, order: WorkingOrder) -> None:
        """Give ``order`` the back of the time queue: on acceptance, and again on every amend."""
        self.arrivals += 1
        order.priority = self.arrivals

    def rest(self, order: WorkingOrder) -> None:
        self.resting[order.order_id] = order
        self._enqueue(order)

    def amend(self, order: WorkingOrder, quantity: Decimal, limit_price: Decimal | None) -> None:
        """Replace a resting order's quantity and limit; it goes to the back of the time queue."""
        self._dequeue(order)
        order.quantity, order.limit_price = quantity, limit_price
        self.stamp_arrival(order)
        self._enqueue(order)

    def close(self, order: WorkingOrder, outcome: Outcome, at: datetime) -> None:
        if self.resting.pop(order.order_id, None) is not None:
            self._dequeue(order)
        self.done[order.order_id] = (outcome, at)

    def advance(self, at: datetime) -> datetime:
        """The venue took an order input at event time ``at``; its event time now."""
        if self.now is None or at > self.now:
            self.now = at
        return self.now

    def answer(self, order_id: str, at: datetime) -> None:
        """The venue answered about ``order_id``, which it never held, at its event time ``at`` (newest now)."""
        self.answered.pop(order_id, None)
        self.answered[order_id] = at

    def forget_before(self, cutoff: datetime) -> list[str]:
        """Forget the finished and answered orders of at or before ``cutoff``; their ids. Both are in the order of the
        venue's event time, which never goes back, so this stops at the first one it keeps."""
        gone: list[str] = []
        while self.done:
            order_id, (_, at) = next(iter(self.done.items()))
            if at > cutoff:
                break
            self.done.popitem(last=False)
            gone.append(order_id)
        while self.answered:
            order_id, at = next(iter(self.answered.items()))
            if at > cutoff:
                break
            self.answered.popitem(last=False)
            gone.append(order_id)
        return gone

    def in_priority(
        self, side: Side, reached: Callable[[Decimal], bool] | None = None
    ) -> Iterator[tuple[Decimal, WorkingOrder]]:
        """(limit, order) of the resting orders of ``side`` (those whose limit is ``reached``, if given): best limit
        first (highest BUY), then earliest arrival. ``reached`` must hold for every limit better than one it holds
        for (a price that reaches a limit reaches every better one): the walk stops at the first limit not reached.
        Lazy: take what is wanted before changing the book."""
        for _, _, order_id in self._queues[side]:
            order = self.resting[order_id]
            assert order.limit_price is not None  # (only priced orders are queued)
            if reached is not None and not reached(order.limit_price):
                return
            yield order.limit_price, order

    def _enqueue(self, order: WorkingOrder) -> None:
        if order.limit_price is not None:
            bisect.insort(self._queues[order.side], _queued(order))

    def _dequeue(self, order: WorkingOrder) -> None:
        if order.limit_price is None:
            return
        queue, key = self._queues[order.side], _queued(order)
        at = bisect.bisect_left(queue, key)
        if at < len(queue) and queue[at] == key:
            del queue[at]

    # --- snapshot ------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, Decimals as strings; resting orders listed in arrival order, so the form is unique."""
        return {
            "touch": {"bid": _level_dict(self.touch.bid), "ask": _level_dict(self.touch.ask)},
            "resting": [_order_dict(o) for o in sorted(self.resting.values(), key=lambda o: o.priority)],
            "done": [[order_id, outcome.value, _micros(at)] for order_id, (outcome, at) in self.done.items()],
            "arrivals": self.arrivals,
            "now": None if self.now is None else _micros(self.now),
            "answered": [[order_id, _micros(at)] for order_id, at in self.answered.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Book:
        """The book ``to_dict`` described; raises ``KeyError``/``ValueError``/``TypeError`` on anything else."""
        touch = data["touch"]
        resting = [_order(item) for item in data["resting"]]
        return cls(
            touch=Touch(bid=_level(touch["bid"]), ask=_level(touch["ask"])),
            resting={o.order_id: o for o in resting},
            done=OrderedDict((str(order_id), (Outcome(outcome), _time(at))) for order_id, outcome, at in data["done"]),
            arrivals=int(data["arrivals"]),
            now=None if data["now"] is None else _time(data["now"]),
            answered=OrderedDict((str(order_id), _time(at)) for order_id, at in data["answered"]),
        )


def _queued(order: WorkingOrder) -> _Queued:
    assert order.limit_price is not None
    return (-order.limit_price if order.side is Side.BUY else order.limit_price, order.priority, order.order_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def _time(micros: int) -> datetime:
    return _EPOCH + int(micros) * _MICROSECOND


def _optional(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise TypeError(f"expected a decimal string, got {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return number


def _level_dict(level: Level | None) -> dict[str, Any] | None:
    return None if level is None else {"price": str(level.price), "size": _optional(level.size)}


def _level(data: Mapping[str, Any] | None) -> Level | None:
    if data is None:
        return None
    return Level(_decimal(data["price"]), None if data["size"] is None else _decimal(data["size"]))


def _order_dict(order: WorkingOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "account_id": order.account_id,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "time_in_force": order.time_in_force.value,
        "quantity": str(order.quantity),
        "limit_price": _optional(order.limit_price),
        "filled": str(order.filled),
        "fills": order.fills,
        "priority": order.priority,
    }


def _order(data: Mapping[str, Any]) -> WorkingOrder:
    return WorkingOrder(
        order_id=str(data["order_id"]),
        account_id=str(data["account_id"]),
        side=Side(data["side"]),
        order_type=OrderType(data["order_type"]),
        time_in_force=TimeInForce(data["time_in_force"]),
        quantity=_decimal(data["quantity"]),
        limit_price=None if data["limit_price"] is None else _decimal(data["limit_price"]),
        filled=_decimal(data["filled"]),
        fills=int(data["fills"]),
        priority=int(data["priority"]),
    )
