"""The order lifecycle: one status enum and one transition table, used by every projector, fold and route that says
what state an order is in (nautilus_trader's ``_ORDER_STATE_TABLE`` pattern: explicit (status, trigger) pairs).

An order's events come from three topics (``orders``, ``orders.checked``, ``executions``), and a reader that follows
all three sees them interleaved in any order across topics (in log order within each). ``next_status`` is the strict
table, for a reader that sees an order's events in causal order; ``settle`` is what a reader of several topics uses,
and its answer does not depend on how the topics interleave:

- an event the table accepts from the current status moves it as the table says;
- an event that arrived before its cause on another topic (a fill read before risk's ``OrderAccepted``) is applied
  from the nearest status reachable from the current one that accepts it: the fill proves the acceptance happened,
  and every venue event before it is already applied (one topic, log order), so risk's decision is all it can lack;
- an event whose effect the status already holds (a late ``OrderAccepted`` after the fill, a redelivered final fill)
  changes nothing.

This holds because every status-changing transition moves the order forward (the statuses reachable from a status
never include it again), the events that change nothing (cancel and amend requests and decisions) are accepted from
every status, and the statuses reachable from a given one that accept an event all lead to the same status (or keep
their own, as an amend does) — tests/domain/test_lifecycle.py checks all three and walks every interleaving of
sample histories.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from domain.errors import DomainError
from schemas.events import Event, OrderFilled


class OrderStatus(StrEnum):
    """Where an order is; the value is the one spelling every route, table and event consumer uses."""

    PENDING = "PENDING"  # placed; risk has not decided
    ACCEPTED = "ACCEPTED"  # risk passed it to the venue; working, nothing filled
    REJECTED = "REJECTED"  # risk refused it; it never reached the venue
    PARTIALLY_FILLED = "PARTIALLY_FILLED"  # working, partly filled
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # time in force ran out (IOC/FOK remainder, end of day)


OPEN = frozenset({OrderStatus.PENDING, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
TERMINAL = frozenset(OrderStatus) - OPEN
INITIAL = OrderStatus.PENDING  # what OrderPlaced makes an order; OrderPlaced itself is no transition

ORDER_MEMORY = timedelta(hours=24)
"""How long, in event time, processors remember an order in a TERMINAL status (and a client order id) before it leaves
their state: a venue's session (FIX asks client order ids to be unique within a trading day). docs/STREAMS.md, "What
state is kept, and for how long"."""


class Trigger(StrEnum):
    """What an order event does to its order: the event's type, a fill told apart by whether it completes the order."""

    PLACED = "OrderPlaced"
    CANCEL_REQUESTED = "CancelRequested"
    AMEND_REQUESTED = "AmendRequested"
    ACCEPTED = "OrderAccepted"
    REJECTED = "OrderRejected"
    CANCEL_ACCEPTED = "CancelAccepted"
    AMEND_ACCEPTED = "AmendAccepted"
    AMEND_REJECTED = "AmendRejected"
    PARTIALLY_FILLED = "OrderFilled(partial)"
    FILLED = "OrderFilled"
    CANCELLED = "OrderCancelled"
    CANCEL_REJECTED = "CancelRejected"
    EXPIRED = "OrderExpired"
    AMENDED = "OrderAmended"
    AMEND_REFUSED = "OrderAmendRejected"

    @classmethod
    def of(cls, event_type: str, *, completes: bool = False) -> Trigger | None:
        """The trigger of an event called ``event_type`` (``completes``: a fill that leaves nothing); None when the
        event is not about one order's lifecycle (limits, kill switch, ticks, positions)."""
        if event_type == "OrderFilled":
            return cls.FILLED if completes else cls.PARTIALLY_FILLED
        try:
            return cls(event_type)
        except ValueError:
            return None


def completes(is_final: bool, leaves_quantity: Decimal) -> bool:
    """Whether a fill leaves nothing of its order working."""
    return is_final or leaves_quantity <= 0


def trigger(event: Event) -> Trigger | None:
    """The trigger of a decoded event; None when it is not about one order's lifecycle."""
    if isinstance(event, OrderFilled):
        return Trigger.of("OrderFilled", completes=completes(event.is_final, event.leaves_quantity))
    return Trigger.of(type(event).__name__)


class InvalidTransition(DomainError):
    """The lifecycle does not allow this event in this status (a fill of a filled order, an acceptance after a fill)."""


S, T = OrderStatus, Trigger
WORKING = (S.ACCEPTED, S.PARTIALLY_FILLED)
# Requests and the decisions on them say nothing about where the order is: a client may ask to cancel or amend any
# order, risk passes or refuses on its own view, the venue refuses what it no longer has. They never move the status,
# from any status, so they are never mistaken for an early event.
UNCHANGING = (
    T.CANCEL_REQUESTED,
    T.AMEND_REQUESTED,
    T.CANCEL_ACCEPTED,
    T.AMEND_ACCEPTED,
    T.AMEND_REJECTED,
    T.CANCEL_REJECTED,
    T.AMEND_REFUSED,
)

TABLE: Mapping[tuple[OrderStatus, Trigger], OrderStatus] = MappingProxyType(
    {
        (S.PENDING, T.ACCEPTED): S.ACCEPTED,
        (S.PENDING, T.REJECTED): S.REJECTED,
        **{(s, T.PARTIALLY_FILLED): S.PARTIALLY_FILLED for s in WORKING},
        **{(s, T.FILLED): S.FILLED for s in WORKING},
        **{(s, T.CANCELLED): S.CANCELLED for s in WORKING},
        **{(s, T.EXPIRED): S.EXPIRED for s in WORKING},
        **{(s, T.AMENDED): s for s in WORKING},  # a new quantity or price; the order keeps working
        **{(s, t): s for s in OrderStatus for t in UNCHANGING},
    }
)


def next_status(status: OrderStatus, event: Event | Trigger) -> OrderStatus:
    """The status ``event`` (an order event, or its trigger) moves an order in ``status`` to.

    Raises:
        InvalidTransition: the table has no move for this status and event.
    """
    cause = event if isinstance(event, Trigger) else trigger(event)
    if cause is None:
        raise InvalidTransition(f"{type(event).__name__} is not an order lifecycle event")
    try:
        return TABLE[(status, cause)]
    except KeyError:
        raise InvalidTransition(
            f"an order in status {status} cannot take {cause}",
            hint=f"from {status}: {', '.join(sorted({t for (s, t) in TABLE if s == status})) or 'nothing'}",
        ) from None


def reachable(status: OrderStatus) -> Iterator[OrderStatus]:
    """The statuses the table can move ``status`` to in one or more steps, nearest first (not ``status`` itself)."""
    seen, frontier = {status}, [status]
    while frontier:
        following = [TABLE[(s, t)] for s in frontier for t in Trigger if (s, t) in TABLE]
        frontier = [s for s in dict.fromkeys(following) if s not in seen]
        seen.update(frontier)
        yield from frontier


def settle(status: OrderStatus, event: Event | Trigger) -> OrderStatus:
    """The status after ``event`` when an order's events are read from several topics in any interleaving.

    Raises:
        InvalidTransition: the event fits nowhere in this order's lifecycle: neither from a status it can reach (an
            event read early) nor from one it has passed (an event read late): the history contradicts itself.
    """
    cause = event if isinstance(event, Trigger) else trigger(event)
    if cause is None:
        raise InvalidTransition(f"{type(event).__name__} is not an order lifecycle event")
    return _settled(status, cause)


@functools.cache  # a pure function of two small enums; a projection asks it for every event it folds
def _settled(status: OrderStatus, cause: Trigger) -> OrderStatus:
    if (status, cause) in TABLE:
        return TABLE[(status, cause)]
    if cause is Trigger.PLACED:  # the order's first event: every status comes after it
        return status
    for later in reachable(status):
        if (later, cause) in TABLE:  # read before its cause on another topic: the cause happened
            return TABLE[(later, cause)]
    if any(status in set(reachable(s)) for (s, t) in TABLE if t == cause):  # read after its effect: already held
        return status
    raise InvalidTransition(f"an order in status {status} cannot have taken {cause} before or after")
