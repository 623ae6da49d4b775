"""The book keeps each side's resting orders in price-time priority as they rest, are amended and close, so a quote
asks only the head of the queue; what it finds must be what sorting every resting order would give, after any
sequence of those operations and after a snapshot's round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.venue import matching
from domain.venue.book import Book, Outcome, WorkingOrder
from schemas.events import OrderType, Side, TimeInForce
from tests.support.properties import example_count

LIMITS = st.integers(min_value=990, max_value=1010).map(lambda p: Decimal(p) / 10)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("rest"), st.sampled_from(Side), LIMITS),
        st.tuples(st.just("amend"), st.integers(min_value=0, max_value=40), LIMITS),
        st.tuples(st.just("close"), st.integers(min_value=0, max_value=40), st.none()),
    ),
    max_size=60,
)
AT = datetime(2024, 1, 1, tzinfo=UTC)


def sorted_by_hand(book: Book, side: Side, price: Decimal) -> list[str]:
    """Every resting order of ``side`` the price reaches, sorted as the venue's rules say: better limit, then
    earlier arrival."""
    mine = [o for o in book.resting.values() if o.side is side and o.limit_price is not None]
    reached = [o for o in mine if matching.reaches(side, o.limit_price, price)]  # type: ignore[arg-type]
    sign = -1 if side is Side.BUY else 1
    return [o.order_id for o in sorted(reached, key=lambda o: (sign * o.limit_price, o.priority))]  # type: ignore[operator]


@settings(max_examples=example_count(200), deadline=None)
@given(OPERATIONS, LIMITS)
def test_the_orders_a_price_reaches_come_in_price_time_priority(operations: list[tuple], price: Decimal) -> None:
    book = Book()
    made: list[WorkingOrder] = []
    for op, which, limit in operations:
        if op == "rest":
            order = WorkingOrder(
                f"o{len(made)}", "acc", which, OrderType.LIMIT, TimeInForce.GTC, Decimal(1), limit_price=limit
            )
            book.stamp_arrival(order)
            book.rest(order)
            made.append(order)
        elif made and (order := made[which % len(made)]).order_id in book.resting:
            if op == "amend":
                book.amend(order, order.quantity, limit)
            else:
                book.close(order, Outcome.CANCELLED, AT)
    restored = Book.from_dict(book.to_dict())
    for side in Side:
        expected = sorted_by_hand(book, side, price)
        reaching = lambda limit, side=side: matching.reaches(side, limit, price)  # noqa: E731
        assert [o.order_id for _, o in book.in_priority(side, reaching)] == expected
        assert [o.order_id for _, o in restored.in_priority(side, reaching)] == expected
