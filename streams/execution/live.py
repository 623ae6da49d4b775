"""The live venue's book: what we know of our orders at a real exchange, and the execution events its reports make.

Pure: no Kafka, no exchange, no clock. The adapter (``streams.execution.adapter``) feeds it what happened —
orders and cancels accepted by risk, the exchange's order and trade structures (ccxt's unified format), and on a
restart the execution events already in the log — and writes out what it returns. Its events are facts the
exchange reported: their event time is the exchange's, and a replay reads them from the log instead of asking the
exchange again.

* ``OrderFilled`` per exchange trade of the order: ``fill_id`` = ``<order_id>-<exchange trade id>``, so a trade
  reported twice (a poll repeated after a crash) is recognised and written once; price, quantity and fee are the
  exchange's exact decimals (8 places); MAKER/TAKER as it says. The fee is in the instrument's quote currency,
  as positions sum it: a fee the exchange took in the base asset (Binance's default on a buy) is valued at the
  fill's own price (fee x price, exact); one in a third asset (BNB) is recorded as charged.
* ``OrderCancelled`` / ``OrderExpired`` when the exchange reports the order canceled / expired with quantity left;
  an order the exchange refused (insufficient funds, invalid order) ends as ``OrderExpired`` with nothing filled
  and the exchange's reason — executions' consumers already treat it as the end of a working order.
* ``CancelRejected`` for a cancel of an unknown or finished order, or of another account's order.

Each event's aggregate is the order id and its sequence continues the order's stream in ``executions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.derive import Sequences, event_id_for
from domain.instruments import Instrument
from domain.venue.matching import scaled
from schemas.events import (
    CancelAccepted,
    CancelRejected,
    Envelope,
    Event,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderType,
    Side,
    new_envelope,
)
from streams.exchanges import dec

FINAL_STATUSES = {"closed", "canceled", "expired", "rejected"}  # ccxt's unified order statuses that end an order


@dataclass
class LiveOrder:
    """One of our orders at the exchange; ``client_order_id`` there is our order id."""

    accepted: OrderAccepted
    filled: Decimal = Decimal(0)
    fill_ids: set[str] = field(default_factory=set)
    outcome: str = ""  # filled | cancelled | expired, once finished
    cancel: CancelAccepted | None = None  # a cancel sent to the exchange, not answered yet

    @property
    def order_id(self) -> str:
        return self.accepted.order_id

    @property
    def leaves(self) -> Decimal:
        return self.accepted.quantity - self.filled

    @property
    def finished(self) -> bool:
        return bool(self.outcome)


class LiveBook:
    """Our orders at one exchange, by order id, and the sequences of their execution streams."""

    def __init__(self, venue: str, instruments: Mapping[str, Instrument]) -> None:
        self.venue = venue
        self.instruments = instruments
        self.orders: dict[str, LiveOrder] = {}
        self.sequences = Sequences()
        self.answered_cancels: set[str] = set()  # event ids of CancelAccepted already answered

    # --- what happened before: the log ---------------------------------------------------------------------------
    def accept(self, event: OrderAccepted) -> LiveOrder | None:
        """Track a newly accepted order; ``None`` if it is known already (a repeated record)."""
        if event.order_id in self.orders:
            return None
        order = self.orders[event.order_id] = LiveOrder(event)
        return order

    def recall(self, event: Event) -> None:
        """Fold an execution event this adapter wrote earlier (a restart rebuilds from the log)."""
        order = self.orders.get(event.envelope.aggregate_id)
        self.sequences.last[event.envelope.aggregate_id] = max(
            self.sequences.last.get(event.envelope.aggregate_id, 0), event.envelope.sequence
        )
        if isinstance(event, CancelRejected):
            self.answered_cancels.add(str(event.envelope.causation_id))
        if order is None:
            return
        if isinstance(event, OrderFilled):
            order.filled = event.cumulative_quantity
            order.fill_ids.add(event.fill_id)
            order.outcome = "filled" if event.is_final else order.outcome
        elif isinstance(event, OrderCancelled):
            order.outcome = "cancelled"
        elif isinstance(event, OrderExpired):
            order.outcome = "expired"
        if order.finished:
            order.cancel = None

    def open_orders(self) -> list[LiveOrder]:
        return [o for o in self.orders.values() if not o.finished]

    # --- what the exchange reports -------------------------------------------------------------------------------
    def reported(self, order: LiveOrder, report: Mapping[str, Any], trades: Sequence[Mapping[str, Any]]) -> list[Event]:
        """The events of the exchange's order structure ``report`` and the order's ``trades``: new fills in time
        order, then the end of the order if the exchange ended it."""
        derived: list[Event] = []
        for trade in sorted(trades, key=lambda t: (int(t["timestamp"]), str(t["id"]))):
            fill_id = f"{order.order_id}-{trade['id']}"
            if fill_id in order.fill_ids or order.finished:
                continue
            derived.append(self._fill(order, fill_id, trade))
        status = report.get("status")
        exchange_filled = dec(report.get("filled")) or Decimal(0)
        if status in FINAL_STATUSES and not order.finished and order.filled >= exchange_filled:
            at = _time(report.get("lastUpdateTimestamp") or report.get("timestamp"))
            if status == "canceled":
                derived.append(self._cancelled(order, at))
            elif status in ("expired", "rejected"):
                derived.append(self._expired(order, at, f"{status} at {self.venue}"))
        return derived

    def refused(self, order: LiveOrder, reason: str, at: datetime) -> OrderExpired:
        """The exchange refused to place ``order``: it ends with nothing filled, for the exchange's reason."""
        return self._expired(order, at, f"rejected by {self.venue}: {reason}")

    def never_placed_cancel(self, order: LiveOrder) -> OrderCancelled:
        """A cancel accepted before the order reached the exchange (it never will): cancelled whole."""
        return self._cancelled(order, (order.cancel or order.accepted).envelope.occurred_at)

    def refusal(self, event: CancelAccepted) -> str:
        """Why a cancel cannot go to the exchange; empty when it can."""
        order = self.orders.get(event.order_id)
        if order is None:
            return "unknown order"
        if order.accepted.account_id != event.account_id:
            return "order belongs to another account"
        if order.finished:
            return f"order already {order.outcome}"
        return ""

    def cancel_rejected(self, event: CancelAccepted, reason: str) -> CancelRejected:
        self.answered_cancels.add(str(event.envelope.event_id))
        return CancelRejected(
            envelope=self._envelope(CancelRejected, event, event.order_id, event.envelope.occurred_at),
            order_id=event.order_id,
            account_id=event.account_id,
            instrument=event.instrument,
            reason=reason,
        )

    # --- the events ----------------------------------------------------------------------------------------------
    def _envelope(self, event: type[Event], trigger: Event, order_id: str, at: datetime) -> Envelope:
        sequence = self.sequences.next(order_id)
        return new_envelope(
            event,
            event_id=event_id_for(event, order_id, sequence),
            occurred_at=at,
            recorded_at=trigger.envelope.recorded_at,
            correlation_id=trigger.envelope.correlation_id,
            causation_id=str(trigger.envelope.event_id),
            aggregate_id=order_id,
            sequence=sequence,
        )

    def _fill(self, order: LiveOrder, fill_id: str, trade: Mapping[str, Any]) -> OrderFilled:
        quantity = dec(trade["amount"]) or Decimal(0)
        order.filled += quantity
        order.fill_ids.add(fill_id)
        if order.leaves <= 0:
            order.outcome = "filled"
        accepted = order.accepted
        price = dec(trade["price"]) or Decimal(0)
        fee, fee_currency = self._fee(accepted.instrument, price, trade.get("fee") or {})
        return OrderFilled(
            envelope=self._envelope(OrderFilled, accepted, order.order_id, _time(trade["timestamp"])),
            order_id=order.order_id,
            account_id=accepted.account_id,
            instrument=accepted.instrument,
            side=accepted.side,
            fill_id=fill_id,
            fill_price=scaled(price),
            fill_quantity=scaled(quantity),
            cumulative_quantity=scaled(order.filled),
            leaves_quantity=scaled(max(order.leaves, Decimal(0))),
            liquidity=Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER,
            fee=fee,
            fee_currency=fee_currency,
            is_final=order.leaves <= 0,
        )

    def _fee(self, symbol: str, price: Decimal, charged: Mapping[str, Any]) -> tuple[Decimal, str]:
        instrument = self.instruments[symbol]
        cost, currency = dec(charged.get("cost")) or Decimal(0), charged.get("currency") or instrument.quote
        if currency == instrument.base:
            cost, currency = cost * price, instrument.quote
        return scaled(cost), currency

    def _cancelled(self, order: LiveOrder, at: datetime) -> OrderCancelled:
        trigger: Event = order.cancel or order.accepted
        reason = (order.cancel.reason if order.cancel else None) or (
            "requested by owner" if order.cancel else f"cancelled at {self.venue}"
        )
        if order.cancel is not None:
            self.answered_cancels.add(str(order.cancel.envelope.event_id))
        order.outcome, order.cancel = "cancelled", None
        return OrderCancelled(
            envelope=self._envelope(OrderCancelled, trigger, order.order_id, at),
            order_id=order.order_id,
            account_id=order.accepted.account_id,
            instrument=order.accepted.instrument,
            cancelled_quantity=scaled(order.leaves),
            reason=reason,
        )

    def _expired(self, order: LiveOrder, at: datetime, reason: str) -> OrderExpired:
        order.outcome = "expired"
        return OrderExpired(
            envelope=self._envelope(OrderExpired, order.accepted, order.order_id, at),
            order_id=order.order_id,
            account_id=order.accepted.account_id,
            instrument=order.accepted.instrument,
            expired_quantity=scaled(order.leaves),
            reason=reason,
        )


def order_request(order: OrderAccepted) -> dict[str, Any]:
    """ccxt ``create_order`` arguments for ``order``: our order id is the exchange's client order id."""
    limit = order.order_type is OrderType.LIMIT
    params: dict[str, Any] = {"clientOrderId": order.order_id}
    if limit:
        params["timeInForce"] = order.time_in_force.value
    return {
        "type": "limit" if limit else "market",
        "side": "buy" if order.side is Side.BUY else "sell",
        "amount": f"{order.quantity.normalize():f}",
        "price": f"{order.limit_price.normalize():f}" if limit and order.limit_price is not None else None,
        "params": params,
    }


def _time(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
