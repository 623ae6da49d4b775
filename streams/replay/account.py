"""An account's state folded from its events: positions (through the positions processor's own ``PositionBook``, so
the numbers are the ones it published) and the status of every order. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import singledispatchmethod

from domain.lifecycle import INITIAL, OPEN, InvalidTransition, OrderStatus, completes, settle
from domain.positions.book import PositionBook
from schemas.events import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderType,
    PositionChanged,
    Side,
    TimeInForce,
)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    """An order as its events up to some moment leave it."""

    order_id: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None
    filled: Decimal
    leaves: Decimal
    status: OrderStatus
    placed_at: datetime
    updated_at: datetime

    @property
    def open(self) -> bool:
        return self.status in OPEN


class AccountFold:
    """Folds one account's events, in the order they happened, into its positions and orders.

    Inputs: ``OrderPlaced`` (orders), ``OrderAccepted``/``OrderRejected`` (orders.checked), and ``OrderFilled``,
    ``OrderCancelled``, ``OrderExpired``, ``OrderAmended`` (executions); every other event changes nothing here.
    """

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._book = PositionBook(account_id)
        self._positions: dict[str, PositionChanged] = {}
        self._orders: dict[str, OrderState] = {}

    @property
    def positions(self) -> Mapping[str, PositionChanged]:
        """Per instrument, the position as its last fill left it (what the positions processor published then)."""
        return self._positions

    @property
    def orders(self) -> Mapping[str, OrderState]:
        return self._orders

    def apply(self, event: Event) -> None:
        if getattr(event, "account_id", self.account_id) == self.account_id:
            self._apply(event)

    @singledispatchmethod
    def _apply(self, event: Event) -> None:
        """Requests, limits, kill switches, cancel and amend decisions: no change to positions or order status."""

    @_apply.register
    def _placed(self, event: OrderPlaced) -> None:
        if event.order_id in self._orders:  # its placement appended again (a retried append): the order stands
            return
        at = event.envelope.occurred_at
        self._orders[event.order_id] = OrderState(
            order_id=event.order_id,
            client_order_id=event.client_order_id,
            instrument=event.instrument,
            side=event.side,
            order_type=event.order_type,
            time_in_force=event.time_in_force,
            quantity=event.quantity,
            limit_price=event.limit_price,
            filled=ZERO,
            leaves=event.quantity,
            status=INITIAL,
            placed_at=at,
            updated_at=at,
        )

    @_apply.register
    def _accepted(self, event: OrderAccepted) -> None:
        self._update(event)

    @_apply.register
    def _rejected(self, event: OrderRejected) -> None:
        self._update(event, leaves=ZERO)

    @_apply.register
    def _filled(self, event: OrderFilled) -> None:
        changed = self._book.apply_fill(event)
        if changed is not None:
            self._positions[event.instrument] = changed
        done = completes(event.is_final, event.leaves_quantity)
        self._update(event, filled=event.cumulative_quantity, leaves=ZERO if done else event.leaves_quantity)

    @_apply.register
    def _cancelled(self, event: OrderCancelled) -> None:
        self._update(event, leaves=ZERO)

    @_apply.register
    def _expired(self, event: OrderExpired) -> None:
        self._update(event, leaves=ZERO)

    @_apply.register
    def _amended(self, event: OrderAmended) -> None:
        self._update(event, quantity=event.quantity, limit_price=event.limit_price, leaves=event.leaves_quantity)

    def _update(
        self,
        event: OrderAccepted | OrderRejected | OrderFilled | OrderCancelled | OrderExpired | OrderAmended,
        **changes: object,
    ) -> None:
        order = self._orders.get(event.order_id)
        if order is None:  # its OrderPlaced is not in what was read (the log was cut before it): nothing to update
            return
        try:
            status = settle(order.status, event)
        except InvalidTransition:  # a history that contradicts itself: the order stays as its other events left it
            status = order.status
        self._orders[event.order_id] = replace(order, updated_at=event.envelope.occurred_at, status=status, **changes)  # type: ignore[arg-type]
