"""The account fold: positions are what the positions processor publishes for the same fills, and order statuses
follow the order's events; events of other accounts change nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain.lifecycle import OrderStatus
from schemas.events import Event, OrderAmended, OrderFilled, OrderPlaced, Side
from streams.processors import PositionsProcessor, ProcessorSettings
from streams.replay.account import AccountFold
from tests.support.events import (
    OCCURRED_AT,
    envelope,
    order_accepted,
    order_amended,
    order_cancelled,
    order_filled,
    order_placed,
    order_rejected,
)


def later(event: type[Event], seconds: int) -> dict[str, object]:
    return {"envelope": envelope(event, occurred_at=OCCURRED_AT + timedelta(seconds=seconds))}


def partly_filled(order_id: str) -> OrderFilled:
    """0.4 of an order of 1 filled, a second in."""
    return order_filled(
        order_id=order_id,
        fill_quantity=Decimal("0.4"),
        cumulative_quantity=Decimal("0.4"),
        leaves_quantity=Decimal("0.6"),
        **later(OrderFilled, 1),
    )


def test_positions_are_the_positions_processors_own_events_for_the_same_fills() -> None:
    fills = [
        order_filled(fill_id="f1", side=Side.BUY, fill_quantity=Decimal("0.3"), fill_price=Decimal("40000.10")),
        order_filled(fill_id="f2", side=Side.BUY, fill_quantity=Decimal("0.2"), fill_price=Decimal("40010.07")),
        order_filled(fill_id="f2", side=Side.BUY, fill_quantity=Decimal("0.2"), fill_price=Decimal("40010.07")),
        order_filled(fill_id="f3", side=Side.SELL, fill_quantity=Decimal("0.45"), fill_price=Decimal("40100.33")),
        order_filled(fill_id="f4", instrument="ETHUSDT", fill_quantity=Decimal("2"), fill_price=Decimal("1200.5")),
        order_filled(fill_id="f5", account_id="someone-else", fill_quantity=Decimal("9")),
    ]
    fold = AccountFold("acc-7")
    processor = PositionsProcessor(ProcessorSettings())
    published = {}
    for fill in fills:
        fold.apply(fill)
        if fill.account_id == "acc-7":
            for changed in processor.handle("executions.by-account", fill):
                published[changed.instrument] = changed
    assert dict(fold.positions) == published
    btc = fold.positions["BTCUSDT"]
    assert btc.quantity == Decimal("0.05")  # 0.3 + 0.2 - 0.45, the redelivered f2 counted once
    assert btc.realized_pnl == (Decimal("40100.33") - btc.average_price) * Decimal("0.45")


def test_order_status_follows_the_orders_events() -> None:
    fold = AccountFold("acc-7")
    fold.apply(order_placed(order_id="o1", quantity=Decimal("1")))
    fold.apply(order_placed(order_id="o2", quantity=Decimal("1")))
    fold.apply(order_placed(order_id="o3", quantity=Decimal("1")))
    assert {o.status for o in fold.orders.values()} == {OrderStatus.PENDING}
    fold.apply(order_accepted(order_id="o1", quantity=Decimal("1")))
    fold.apply(order_rejected(order_id="o2"))
    fold.apply(order_accepted(order_id="o3", quantity=Decimal("1")))
    fold.apply(partly_filled("o1"))
    fold.apply(
        order_amended(order_id="o1", quantity=Decimal("0.8"), leaves_quantity=Decimal("0.4"), **later(OrderAmended, 2))
    )
    fold.apply(order_cancelled(order_id="o3"))
    o1, o2, o3 = (fold.orders[o] for o in ("o1", "o2", "o3"))
    assert (o1.status, o1.filled, o1.leaves, o1.quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal("0.4"),
        Decimal("0.4"),
        Decimal("0.8"),
    )
    assert o1.updated_at == OCCURRED_AT + timedelta(seconds=2)
    assert (o2.status, o2.open, o3.status, o3.open) == (OrderStatus.REJECTED, False, OrderStatus.CANCELLED, False)
    fold.apply(
        order_filled(
            order_id="o1",
            fill_id="f9",
            fill_quantity=Decimal("0.4"),
            cumulative_quantity=Decimal("0.8"),
            leaves_quantity=Decimal("0"),
            is_final=True,
        )
    )
    assert (fold.orders["o1"].status, fold.orders["o1"].leaves) == (OrderStatus.FILLED, Decimal("0"))
    assert not any(o.open for o in fold.orders.values())


def test_an_order_placed_again_keeps_what_its_events_made_of_it() -> None:
    """A client retried a placement Kafka had not confirmed and both landed: the later copy is the same order, not a
    new one — the replayed state keeps its fill and its first placement time."""
    fold = AccountFold("acc-7")
    fold.apply(order_placed(order_id="o1", quantity=Decimal("1")))
    fold.apply(order_accepted(order_id="o1", quantity=Decimal("1")))
    fold.apply(partly_filled("o1"))
    fold.apply(order_placed(order_id="o1", quantity=Decimal("1"), **later(OrderPlaced, 2)))

    o1 = fold.orders["o1"]
    assert (o1.status, o1.filled, o1.leaves) == (OrderStatus.PARTIALLY_FILLED, Decimal("0.4"), Decimal("0.6"))
    assert o1.placed_at == OCCURRED_AT
