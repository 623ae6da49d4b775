"""The order lifecycle: the whole transition table, every order event type through it, and a status that does not
depend on how the three topics of an order interleave."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest

from domain.lifecycle import (
    INITIAL,
    OPEN,
    TABLE,
    InvalidTransition,
    OrderStatus,
    Trigger,
    next_status,
    reachable,
    settle,
    trigger,
)
from schemas.events import EVENT_TYPES, Event
from tests.support import events as build

S, T = OrderStatus, Trigger
UNCHANGING = {
    T.CANCEL_REQUESTED,
    T.AMEND_REQUESTED,
    T.CANCEL_ACCEPTED,
    T.AMEND_ACCEPTED,
    T.AMEND_REJECTED,
    T.CANCEL_REJECTED,
    T.AMEND_REFUSED,
}
# The lifecycle written out by hand: every move that changes or keeps a status besides the requests and decisions
# in UNCHANGING (which every status takes and keeps). Anything not here must raise.
MOVES: dict[OrderStatus, dict[Trigger, OrderStatus]] = {
    S.PENDING: {T.ACCEPTED: S.ACCEPTED, T.REJECTED: S.REJECTED},
    S.ACCEPTED: {
        T.PARTIALLY_FILLED: S.PARTIALLY_FILLED,
        T.FILLED: S.FILLED,
        T.CANCELLED: S.CANCELLED,
        T.EXPIRED: S.EXPIRED,
        T.AMENDED: S.ACCEPTED,
    },
    S.PARTIALLY_FILLED: {
        T.PARTIALLY_FILLED: S.PARTIALLY_FILLED,
        T.FILLED: S.FILLED,
        T.CANCELLED: S.CANCELLED,
        T.EXPIRED: S.EXPIRED,
        T.AMENDED: S.PARTIALLY_FILLED,
    },
    S.REJECTED: {},
    S.FILLED: {},
    S.CANCELLED: {},
    S.EXPIRED: {},
}


@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("cause", list(Trigger))
def test_every_status_and_trigger_either_moves_as_written_or_raises(status: OrderStatus, cause: Trigger) -> None:
    expected = status if cause in UNCHANGING else MOVES[status].get(cause)
    if expected is None:
        with pytest.raises(InvalidTransition, match=re.escape(f"status {status} cannot take {cause}")):
            next_status(status, cause)
    else:
        assert next_status(status, cause) == expected


@pytest.mark.parametrize("status", [S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED])
def test_a_finished_order_refuses_fills_and_every_other_change(status: OrderStatus) -> None:
    for cause in (T.PARTIALLY_FILLED, T.FILLED, T.ACCEPTED, T.REJECTED, T.CANCELLED, T.EXPIRED, T.AMENDED, T.PLACED):
        with pytest.raises(InvalidTransition):
            next_status(status, cause)
    assert status not in OPEN


def test_the_one_spelling_is_the_upper_case_name() -> None:
    assert [s.value for s in OrderStatus] == [s.name for s in OrderStatus]
    assert set(OrderStatus) == {
        "PENDING",
        "ACCEPTED",
        "REJECTED",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELLED",
        "EXPIRED",
    }


def test_every_order_event_type_has_a_trigger_and_nothing_else_does() -> None:
    order_events = {
        name for name, cls in EVENT_TYPES.items() if "order_id" in {f.name for f in dataclasses.fields(cls)}
    }
    triggered = {event for event in build.every_event() if trigger(event) is not None}
    assert {type(event).__name__ for event in triggered} == order_events
    assert {t.value.split("(")[0] for t in Trigger} == order_events  # and every trigger is one of them


def test_decoded_events_walk_the_table_by_their_type() -> None:
    placed = INITIAL
    accepted = next_status(placed, build.order_accepted())
    part = next_status(accepted, build.order_filled(leaves_quantity=Decimal("0.15"), is_final=False))
    amended = next_status(part, build.order_amended())
    done = next_status(amended, build.order_filled(leaves_quantity=Decimal(0), is_final=True))
    assert (placed, accepted, part, amended, done) == (
        S.PENDING,
        S.ACCEPTED,
        S.PARTIALLY_FILLED,
        S.PARTIALLY_FILLED,
        S.FILLED,
    )
    with pytest.raises(InvalidTransition, match="FILLED cannot take OrderFilled"):
        next_status(done, build.order_filled(leaves_quantity=Decimal(0), is_final=True))
    with pytest.raises(InvalidTransition, match="not an order lifecycle event"):
        next_status(S.ACCEPTED, build.tick_ingested())


def test_the_table_only_moves_forward_and_an_early_event_has_one_place_to_go() -> None:
    for status in OrderStatus:
        assert status not in set(reachable(status)), status
        for cause in Trigger:
            # Statuses it moves to from somewhere ahead; one that keeps its status (an amend) lands on the nearest.
            moves = {TABLE[(later, cause)] for later in reachable(status) if TABLE.get((later, cause), later) != later}
            assert len(moves) <= 1, (status, cause, moves)


def interleavings(*topics: Sequence[Event]) -> Iterator[list[Event]]:
    """Every merge of the topics' sequences that keeps each topic's own order."""
    live = [t for t in topics if t]
    if not live:
        yield []
        return
    for i, topic in enumerate(live):
        rest = [*live[:i], topic[1:], *live[i + 1 :]]
        for tail in interleavings(*rest):
            yield [topic[0], *tail]


def projected(history: Sequence[Event]) -> OrderStatus:
    status = INITIAL  # a reader makes an order's row on the first of its events it sees, whichever that is
    for event in history:
        status = settle(status, event)
    return status


def partial(fill_id: str) -> Event:
    return build.order_filled(fill_id=fill_id, leaves_quantity=Decimal("0.1"), is_final=False)


FINAL = build.order_filled(fill_id="f9", leaves_quantity=Decimal(0), is_final=True)
HISTORIES = {  # per order: its events on orders, orders.checked, executions, each topic in log order
    "filled in parts, a fill redelivered": (
        [build.order_placed()],
        [build.order_accepted()],
        [partial("f1"), partial("f2"), partial("f2"), FINAL, FINAL],
    ),
    "cancelled after a fill": (
        [build.order_placed(), build.cancel_requested()],
        [build.order_accepted(), build.cancel_accepted()],
        [partial("f1"), build.order_cancelled()],
    ),
    "rejected, then a cancel the venue refuses": (
        [build.order_placed(), build.cancel_requested()],
        [build.order_rejected(), build.cancel_accepted()],
        [build.cancel_rejected()],
    ),
    "amended, then expired": (
        [build.order_placed(), build.amend_requested()],
        [build.order_accepted(), build.amend_accepted()],
        [build.order_amended(), build.order_expired()],
    ),
    "a cancel that lost the race with the last fill": (
        [build.order_placed(), build.cancel_requested()],
        [build.order_accepted(), build.cancel_accepted()],
        [FINAL, build.cancel_rejected()],
    ),
    "an amend risk refused, still working": (
        [build.order_placed(), build.amend_requested()],
        [build.order_accepted(), build.amend_rejected()],
        [],
    ),
    "filled, amended, filled": (
        [build.order_placed(), build.amend_requested()],
        [build.order_accepted(), build.amend_accepted()],
        [partial("f1"), build.order_amended(), partial("f2")],
    ),
    "placed, risk has not decided": ([build.order_placed(), build.cancel_requested()], [], []),
}
EXPECTED = {
    "filled in parts, a fill redelivered": S.FILLED,
    "cancelled after a fill": S.CANCELLED,
    "rejected, then a cancel the venue refuses": S.REJECTED,
    "amended, then expired": S.EXPIRED,
    "a cancel that lost the race with the last fill": S.FILLED,
    "an amend risk refused, still working": S.ACCEPTED,
    "filled, amended, filled": S.PARTIALLY_FILLED,
    "placed, risk has not decided": S.PENDING,
}


@pytest.mark.parametrize("name", list(HISTORIES))
def test_the_status_is_the_same_whatever_order_the_topics_are_read_in(name: str) -> None:
    orders, checked, executions = HISTORIES[name]
    causal = [*orders, *checked, *executions]
    assert projected(causal) == EXPECTED[name]
    seen = {projected(history) for history in interleavings(orders, checked, executions)}
    assert seen == {EXPECTED[name]}


def test_a_history_that_contradicts_itself_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="before or after"):
        settle(S.REJECTED, FINAL)  # risk refused it, yet the venue filled it
