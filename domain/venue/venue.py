"""The simulated venue of one instrument: our accepted orders matched against the quotes and trades we ingest.

Pure: no Kafka, no database, no clock, no randomness. The same events in the same order derive the same events,
byte for byte, live, in replay and in backtest. ``handle`` takes ``OrderAccepted``, ``CancelAccepted`` and
``AmendAccepted`` (topic ``orders.checked``) and ``TickIngested`` (topic ``ticks``), and returns what happened on
topic ``executions``: ``OrderFilled``, ``OrderCancelled``, ``CancelRejected``, ``OrderExpired``, ``OrderAmended``,
``OrderAmendRejected``. Any other event derives nothing.

Quotes and trades
    A tick carrying a bid or an ask is a quote: it replaces the touch entirely (a side it does not carry has no
    quote; a side without a size has no size limit). Its ``last``, if any, is ignored: a ticker's last price
    reports a trade already seen, not a new one. A tick with only ``last`` (and ``last_size``) is a trade print.
    Size we trade against a quote is gone from it until the next quote replaces it, so two orders cannot both
    take the whole of one level.

Orders on arrival (TAKER)
    MARKET fills at once at the touch — the ask for a BUY, the bid for a SELL — moved against us by
    ``slippage_bps`` and rounded to the tick away from us (up for a BUY, down for a SELL), for at most the size
    quoted there. A LIMIT is marketable when the touch reaches it (ask <= BUY limit, bid >= SELL limit) and then
    fills at the touch price, never worse than its limit, for at most the size quoted. What is left: GTC LIMIT
    rests on the book; IOC (and MARKET GTC, refused upstream, treated as IOC) expires (``OrderExpired``); FOK fills
    in full at arrival or expires with nothing filled. With no quote on the side it needs, an order fills nothing.

Resting orders (MAKER)
    A later quote whose ask is at or below a resting BUY's limit (bid at or above a SELL's) fills it at its own
    limit price; so does a trade printed strictly through the limit (a print at the limit fills nothing: orders
    resting there before ours were ahead in the queue). The quoted or printed size (unlimited when not given) is
    shared among our resting orders in price-time priority: better limit first, then earlier arrival at the venue.
    Time is the order in which the venue received the orders, not their timestamps, which may tie; an amend sends
    an order to the back. Each side of our book meets a print separately, for the print's whole size.

Fills
    ``OrderFilled`` per fill: ``fill_quantity``, ``cumulative_quantity``, ``leaves_quantity``, ``is_final`` when
    nothing is left; ``fill_id`` = ``<order_id>-<n>`` for the n-th fill of the order. The fee is price x quantity
    x bps / 10,000 (``maker_fee_bps`` or ``taker_fee_bps``; negative is a rebate) in the instrument's quote
    currency, exact, at 8 places (round half even). Every price, quantity and fee is written with 8 places.

Cancels and amends
    A cancel of a resting order cancels what is left (``OrderCancelled``, its reason the request's, or "requested
    by owner"); of an unknown or finished order, or of another account's order, ``CancelRejected`` ("unknown
    order", "order already filled", ...). A finished order is remembered for ``order_memory`` of the venue's event
    time (its orders' times, not the ticks'); after that it is an unknown order again, and a late cancel hears so.
    An amend replaces the quantity and/or limit price of a resting order (``OrderAmended``: leaves = new quantity
    - filled), sends it to the back of the time queue, and matches it at once against the touch as a new arrival
    would be (TAKER), so a price made marketable fills; an amend of an unknown or finished order, of another account's
    order, or to a quantity not above what is filled is ``OrderAmendRejected``.

Stamps
    Each derived event takes its time and causal chain from the event that triggered it (``domain.derive``),
    its aggregate is the order id, and its sequence comes from ``Sequences`` (shared by ``Venues`` across the
    instruments of a processor). Nothing else is read.

State
    ``to_snapshot``/``from_snapshot``: the touch, resting orders, recently finished orders, the arrival counter, the
    venue's event time and the sequences, as deterministic JSON (sorted keys, Decimals as strings). The config is
    not in it: it is the host's to give, like the instrument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.derive import UNTRACKED, Sequences, derived_envelope, untracked_sequence
from domain.instruments import Instrument
from domain.lifecycle import ORDER_MEMORY
from domain.venue import matching, snapshot
from domain.venue.book import Book, Level, Outcome, Touch, WorkingOrder
from domain.venue.errors import DuplicateOrderError, InvalidOrderError, SnapshotError, WrongInstrumentError
from schemas.events import (
    AmendAccepted,
    CancelAccepted,
    CancelRejected,
    Envelope,
    Event,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderAmendRejected,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderType,
    Side,
    TickIngested,
    TimeInForce,
)

Rule = Callable[[Side, Decimal, Decimal], bool]  # (side, limit, price) -> does the price fill the order?

# The venue remembers finished orders this share of the order memory longer than risk (an hour a day): the venue's
# event time is every account's on the instrument, and may run ahead of an account's by the servers' clock skew.
_MARGIN = 1 / 24


class VenueConfig(BaseModel):
    """How the simulated venue prices what it fills, and which instruments go to the live venue instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slippage_bps: Decimal = Field(
        Decimal(0), ge=0, lt=10_000, description="How far a MARKET order's price moves from the touch against it."
    )
    maker_fee_bps: Decimal = Field(
        Decimal(0), gt=-10_000, lt=10_000, description="Fee on fills of resting orders (MAKER); negative: a rebate."
    )
    taker_fee_bps: Decimal = Field(
        Decimal(0), gt=-10_000, lt=10_000, description="Fee on fills against the touch at arrival or amend (TAKER)."
    )
    order_memory: timedelta = Field(
        ORDER_MEMORY,
        gt=timedelta(0),
        description="How long, in the venue's event time, a finished order is remembered: until then a late cancel "
        "or amend hears how it ended (and its id cannot be accepted again); after, it is an unknown order.",
    )
    live_instruments: frozenset[str] = Field(
        frozenset(),
        description="Instruments traded at the real exchange by the live venue adapter (streams.execution.adapter); "
        "the simulated venue leaves their orders and ticks alone. Default: none, everything is simulated.",
    )


class SimulatedVenue:
    """The book of our resting orders in one instrument, matched against its quotes and trades."""

    def __init__(self, instrument: Instrument, config: VenueConfig, *, sequences: Sequences | None = None) -> None:
        self.instrument = instrument
        self.config = config
        self.sequences = Sequences() if sequences is None else sequences
        self.book = Book()

    def handle(self, event: Event) -> list[Event]:
        """The executions ``event`` derives, in the order they happened; none for events the venue does not act on.

        Raises:
            WrongInstrumentError: the event is about another instrument.
            InvalidOrderError, DuplicateOrderError: an ``OrderAccepted`` the venue cannot work.
        """
        symbol = getattr(event, "instrument", self.instrument.symbol)
        if symbol != self.instrument.symbol:
            raise WrongInstrumentError(
                f"{type(event).__name__} for {symbol} reached the venue of {self.instrument.symbol}"
            )
        return self._dispatch(type(event))(self, event)

    @functools.singledispatchmethod
    def _derive(self, event: Event) -> list[Event]:
        return []

    @_derive.register
    def _order_accepted(self, event: OrderAccepted) -> list[Event]:
        self._advance(event)
        order = self._working(event)
        self.book.stamp_arrival(order)
        derived = self._take(event, order)
        if order.leaves == 0:
            self.book.close(order, Outcome.FILLED, self._now(event))
        elif order.order_type is OrderType.LIMIT and order.time_in_force is TimeInForce.GTC:
            self.book.rest(order)
        else:
            derived.append(self._expired(event, order))
        return derived

    @_derive.register
    def _cancel_accepted(self, event: CancelAccepted) -> list[Event]:
        self._advance(event)
        order = self.book.resting.get(event.order_id)
        refusal = self._refusal(event.order_id, event.account_id, order)
        if order is None or refusal:
            return [self._cancel_rejected(event, refusal)]
        self.book.close(order, Outcome.CANCELLED, self._now(event))
        cancelled = OrderCancelled(
            envelope=self._envelope(OrderCancelled, event, order.order_id),
            order_id=order.order_id,
            account_id=order.account_id,
            instrument=self.instrument.symbol,
            cancelled_quantity=matching.scaled(order.leaves),
            reason=event.reason or "requested by owner",
        )
        return [cancelled]

    @_derive.register
    def _amend_accepted(self, event: AmendAccepted) -> list[Event]:
        self._advance(event)
        order = self.book.resting.get(event.order_id)
        refusal = self._refusal(event.order_id, event.account_id, order)
        if order is None or refusal:
            return [self._amend_rejected(event, refusal)]
        quantity = order.quantity if event.new_quantity is None else event.new_quantity
        if quantity <= order.filled:
            filled = matching.scaled(order.filled)
            reason = f"new quantity {matching.scaled(quantity)} is not above the filled quantity {filled}"
            return [self._amend_rejected(event, reason)]
        self.book.amend(order, quantity, order.limit_price if event.new_limit_price is None else event.new_limit_price)
        amended = OrderAmended(
            envelope=self._envelope(OrderAmended, event, order.order_id),
            order_id=order.order_id,
            account_id=order.account_id,
            instrument=self.instrument.symbol,
            quantity=matching.scaled(order.quantity),
            limit_price=None if order.limit_price is None else matching.scaled(order.limit_price),
            leaves_quantity=matching.scaled(order.leaves),
        )
        derived: list[Event] = [amended, *self._take(event, order)]
        if order.leaves == 0:
            self.book.close(order, Outcome.FILLED, self._now(event))
        return derived

    @_derive.register
    def _tick_ingested(self, event: TickIngested) -> list[Event]:
        if event.bid is not None or event.ask is not None:
            self.book.touch = Touch(
                bid=None if event.bid is None else Level(event.bid, event.bid_size),
                ask=None if event.ask is None else Level(event.ask, event.ask_size),
            )
            return [
                *self._make(event, Side.BUY, self.book.touch.ask, matching.reaches),
                *self._make(event, Side.SELL, self.book.touch.bid, matching.reaches),
            ]
        if event.last is not None:
            return [
                *self._make(event, Side.BUY, Level(event.last, event.last_size), matching.trades_through),
                *self._make(event, Side.SELL, Level(event.last, event.last_size), matching.trades_through),
            ]
        return []

    _dispatch = staticmethod(_derive.dispatcher.dispatch)  # (without a wrapper per call: see RiskEngine's)

    # --- matching ------------------------------------------------------------------------------------------------

    def _take(self, trigger: Event, order: WorkingOrder) -> list[Event]:
        """Fill ``order`` against the touch as a TAKER, as far as its price, its time in force and the size allow."""
        level = self.book.touch.facing(order.side)
        if level is None or not self._marketable(order, level):
            return []
        quantity = level.available(order.leaves)
        if quantity <= 0 or (order.time_in_force is TimeInForce.FOK and quantity < order.leaves):
            return []
        price = level.price
        if order.order_type is OrderType.MARKET:
            price = matching.slipped(order.side, price, self.config.slippage_bps, self.instrument.tick_size)
        level.take(quantity)
        return [self._fill(trigger, order, price, quantity, Liquidity.TAKER)]

    def _make(self, trigger: Event, side: Side, level: Level | None, rule: Rule) -> list[Event]:
        """Fill resting orders of ``side`` that ``level`` reaches under ``rule``, as MAKER at their limit prices."""
        if level is None:
            return []
        reached: list[tuple[Decimal, WorkingOrder]] = []
        left = level.size
        for limit, order in self.book.in_priority(side, lambda limit: rule(side, limit, level.price)):
            if left is not None and left <= 0:
                break  # the level's size is all shared out: the orders behind get nothing (matching.allocate)
            reached.append((limit, order))
            left = None if left is None else left - order.leaves
        shares = matching.allocate([order.leaves for _, order in reached], level.size)
        derived: list[Event] = []
        for (limit, order), quantity in zip(reached, shares, strict=False):  # the shares go to the first in priority
            level.take(quantity)
            derived.append(self._fill(trigger, order, limit, quantity, Liquidity.MAKER))
            if order.leaves == 0:
                self.book.close(order, Outcome.FILLED, self._now(trigger))
        return derived

    @staticmethod
    def _marketable(order: WorkingOrder, level: Level) -> bool:
        return order.limit_price is None or matching.reaches(order.side, order.limit_price, level.price)

    # --- the events ----------------------------------------------------------------------------------------------

    def _envelope(self, event: type[Event], trigger: Event, order_id: str) -> Envelope:
        return derived_envelope(event, trigger, order_id, self._sequence(trigger, order_id))

    def _sequence(self, trigger: Event, order_id: str) -> int:
        """The next number of ``order_id``'s stream on ``executions``.

        The venue cannot tell an order it never held from one it forgot; risk's request can: risk numbers from the
        request (``untracked_sequence``) an order it holds no count for. So an order neither holds is numbered from
        the request too (from 1 again, the answer would take the event id of the order's first report), and one
        risk still holds but the venue never did (risk refused it) is counted from 1 and remembered for the order
        memory. The venue keeps finished orders a little longer than risk (``_MARGIN``), so an order risk still
        holds is never one the venue forgot.
        """
        if self.book.knows(order_id) or isinstance(trigger, OrderAccepted):
            return self.sequences.next(order_id)
        if order_id not in self.sequences.last and trigger.envelope.sequence > UNTRACKED:
            return untracked_sequence(trigger)
        if order_id in self.book.answered or order_id not in self.sequences.last:  # not another venue's order
            self.book.answer(order_id, self._now(trigger))
        return self.sequences.next(order_id)

    # --- what is kept, and for how long --------------------------------------------------------------------------

    def _advance(self, event: Event) -> None:
        """Move the venue's event time to an order input's, and forget what finished an order memory before it.

        Runs before the input is worked, and depends only on the inputs so far: the same log forgets the same
        orders, replayed whole or from a snapshot.
        """
        now = self.book.advance(event.envelope.occurred_at)
        memory = self.config.order_memory
        for order_id in self.book.forget_before(now - memory - memory * _MARGIN):
            self.sequences.last.pop(order_id, None)

    def _now(self, trigger: Event) -> datetime:
        return trigger.envelope.occurred_at if self.book.now is None else self.book.now

    def _fill(
        self, trigger: Event, order: WorkingOrder, price: Decimal, quantity: Decimal, liquidity: Liquidity
    ) -> OrderFilled:
        order.filled += quantity
        order.fills += 1
        bps = self.config.maker_fee_bps if liquidity is Liquidity.MAKER else self.config.taker_fee_bps
        return OrderFilled(
            envelope=self._envelope(OrderFilled, trigger, order.order_id),
            order_id=order.order_id,
            account_id=order.account_id,
            instrument=self.instrument.symbol,
            side=order.side,
            fill_id=f"{order.order_id}-{order.fills}",
            fill_price=matching.scaled(price),
            fill_quantity=matching.scaled(quantity),
            cumulative_quantity=matching.scaled(order.filled),
            leaves_quantity=matching.scaled(order.leaves),
            liquidity=liquidity,
            fee=matching.fee(price, quantity, bps),
            fee_currency=self.instrument.quote,
            is_final=order.leaves == 0,
        )

    def _expired(self, trigger: Event, order: WorkingOrder) -> OrderExpired:
        self.book.close(order, Outcome.EXPIRED, self._now(trigger))
        return OrderExpired(
            envelope=self._envelope(OrderExpired, trigger, order.order_id),
            order_id=order.order_id,
            account_id=order.account_id,
            instrument=self.instrument.symbol,
            expired_quantity=matching.scaled(order.leaves),
            reason=self._why_expired(order),
        )

    def _why_expired(self, order: WorkingOrder) -> str:
        label = "FOK not fillable in full" if order.time_in_force is TimeInForce.FOK else "IOC remainder"
        side = "ask" if order.side is Side.BUY else "bid"
        level = self.book.touch.facing(order.side)
        if level is None:
            return f"{label}: no {side} quoted"
        if not self._marketable(order, level):
            return f"{label}: the {side} {level.price} does not reach the limit {order.limit_price}"
        return f"{label}: not enough size at the {side} {level.price}"

    def _refusal(self, order_id: str, account_id: str, order: WorkingOrder | None) -> str:
        """Why a cancel or amend of ``order_id`` cannot be carried out; empty when it can."""
        if order is None:
            done = self.book.done.get(order_id)
            return "unknown order" if done is None else f"order already {done[0].value}"
        if order.account_id != account_id:
            return "order belongs to another account"
        return ""

    def _cancel_rejected(self, event: CancelAccepted, reason: str) -> CancelRejected:
        return CancelRejected(
            envelope=self._envelope(CancelRejected, event, event.order_id),
            order_id=event.order_id,
            account_id=event.account_id,
            instrument=self.instrument.symbol,
            reason=reason,
        )

    def _amend_rejected(self, event: AmendAccepted, reason: str) -> OrderAmendRejected:
        return OrderAmendRejected(
            envelope=self._envelope(OrderAmendRejected, event, event.order_id),
            order_id=event.order_id,
            account_id=event.account_id,
            instrument=self.instrument.symbol,
            reason=reason,
        )

    def _working(self, event: OrderAccepted) -> WorkingOrder:
        if self.book.knows(event.order_id):
            raise DuplicateOrderError(f"order {event.order_id} was already accepted at the venue")
        if event.quantity <= 0:
            raise InvalidOrderError(f"order {event.order_id}: quantity {event.quantity} is not above zero")
        if event.order_type is OrderType.LIMIT and event.limit_price is None:
            raise InvalidOrderError(f"order {event.order_id}: a LIMIT order without a limit price")
        return WorkingOrder(
            order_id=event.order_id,
            account_id=event.account_id,
            side=event.side,
            order_type=event.order_type,
            time_in_force=event.time_in_force,
            quantity=event.quantity,
            limit_price=event.limit_price if event.order_type is OrderType.LIMIT else None,
        )

    # --- snapshot ------------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The venue's own state as plain JSON values (the sequences are the holder's: see ``to_snapshot``)."""
        return {"instrument": self.instrument.symbol, **self.book.to_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the state ``state()`` described; raises ``SnapshotError`` if it is not one, or another instrument's."""
        if state.get("instrument") != self.instrument.symbol:
            raise SnapshotError(f"a snapshot of {state.get('instrument')!r} cannot restore {self.instrument.symbol}")
        try:
            self.book = Book.from_dict(state)
        except (KeyError, ValueError, TypeError, ArithmeticError, AttributeError) as err:
            raise SnapshotError(
                f"not a venue snapshot of {self.instrument.symbol}: {type(err).__name__}: {err}"
            ) from err

    def to_snapshot(self) -> bytes:
        """The venue and its sequences (all of them, when shared) as deterministic JSON: equal states, equal bytes."""
        return snapshot.dumps({"format": snapshot.FORMAT, "venue": self.state(), "sequences": self.sequences.last})

    @classmethod
    def from_snapshot(cls, data: bytes, instrument: Instrument, config: VenueConfig) -> SimulatedVenue:
        """The venue ``to_snapshot`` wrote, working again under ``config``."""
        loaded = snapshot.loads(data)
        venue = cls(instrument, config, sequences=snapshot.sequences_from(loaded.get("sequences")))
        venue.restore(loaded.get("venue") or {})
        return venue
