"""The pre-trade risk engine: every event of its accounts in, the events risk derives from them out.

``RiskEngine.handle(event)`` folds one input into the state and returns what it decided — ``OrderAccepted`` or
``OrderRejected`` for an ``OrderPlaced``, ``CancelAccepted`` for a ``CancelRequested`` or for each working order
when a kill switch is engaged, ``AmendAccepted`` or ``AmendRejected`` for an ``AmendRequested`` — and nothing for the
inputs that only inform it (limits, ticks, executions, positions). No Kafka, no clock, no randomness: a Kafka
processor hosts it live, and replay and backtest run the very same code over recorded logs.

How reference prices reach risk, and why that way
    Risk is keyed by account (``orders`` and ``positions`` are partitioned by account, so one processor instance
    owns all of an account's state and writes its decisions alone), but prices are keyed by instrument (``ticks``).
    Any account may trade any instrument, so every risk instance needs the reference price of *every* instrument,
    not just of the ``ticks`` partitions that would share its partition numbers. Each instance therefore reads all
    partitions of ``ticks`` into one engine-wide table of the last reference price per instrument — what Kafka
    Streams calls a GlobalKTable — and ``handle(TickIngested)`` updates that table for all the engine's accounts.
    A reference is the mid of bid and ask when a tick has both, else its last trade price, stamped with the tick's
    event time; a tick with neither leaves the references as they were. An order is weighed against the latest
    reference at or before its own event time, never a later one, so a tick dated in the future cannot make the
    orders before its time stale (``state.reference_at``).

Determinism: what the engine decides depends only on the sequence of inputs it is given, never on when they arrive.
A decision reads the state *as of that input*, so for a replay to decide as live processing did, the host must
interleave ticks, execution reports and position changes with orders in event-time order, the same way every time
(the host's job; the engine only requires inputs to come in the order it must decide them). Time-based checks use
event time: an order's age window, staleness and UTC day come from its ``envelope.occurred_at``. Decimal arithmetic
runs under ``amounts.CONTEXT`` whatever context the caller has set. Derived events are stamped by
``domain.derive.derived_envelope`` with the order id as aggregate and the next number of the engine's
``Sequences`` for that order on ``orders.checked``; the sequences are state, snapshotted with the rest.

Fail closed: an instrument not in the registry, a missing or stale reference price, an amend of an order risk does
not hold open — each is a rejection, never a pass. Cancels are the exception: one is always forwarded, because
cancelling reduces risk and the venue, not risk, knows whether the order is still working (it answers
``CancelRejected`` otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import localcontext
from functools import singledispatchmethod
from types import MappingProxyType

from domain.derive import Sequences, derived_envelope, untracked_sequence
from domain.instruments import Instrument
from domain.lifecycle import ORDER_MEMORY, completes
from domain.risk import rules
from domain.risk.amounts import CONTEXT
from domain.risk.errors import NotARiskInputError
from domain.risk.limits import RiskLimits
from domain.risk.rules import Candidate, ReasonCode, Rejection
from domain.risk.snapshot import EngineState, decode, encode
from domain.risk.state import AccountRisk, OpenOrder, Reference, amended, observe, reference_at
from schemas.events import (
    AmendAccepted,
    AmendRejected,
    AmendRequested,
    CancelAccepted,
    CancelRejected,
    CancelRequested,
    Event,
    KillSwitchToggled,
    OrderAccepted,
    OrderAmended,
    OrderAmendRejected,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderType,
    PositionChanged,
    RiskLimitsSet,
    TickIngested,
)

KILL_SWITCH_REASON = "KILL_SWITCH"


class RiskEngine:
    """Pre-trade risk for the accounts of one partition, with the reference prices of all instruments.

    Parameters
    ----------
    default_limits:
        The limits of an account until a ``RiskLimitsSet`` arrives for it.
    instruments:
        The instrument registry: what is tradable, with its quantity and price rules and quote currency.
    order_memory:
        How long, in an account's event time, its client order ids stay taken and its finished orders stay known
        (their sequences on ``orders.checked``); configuration, like the limits: a replay must be given the same.
    """

    def __init__(
        self,
        default_limits: RiskLimits,
        instruments: Mapping[str, Instrument],
        *,
        order_memory: timedelta = ORDER_MEMORY,
    ) -> None:
        self.default_limits = default_limits
        self.instruments = instruments
        self.order_memory = order_memory
        self._state = EngineState(references={}, sequences={}, accounts={})
        self._sequences = Sequences(self._state.sequences)

    # --- reading the state ---------------------------------------------------------------------------------------

    @property
    def accounts(self) -> Mapping[str, AccountRisk]:
        return MappingProxyType(self._state.accounts)

    @property
    def references(self) -> Mapping[str, Reference]:
        """The latest reference price of each instrument (by event time)."""
        return MappingProxyType({symbol: history[-1] for symbol, history in self._state.references.items()})

    def limits_of(self, account: AccountRisk) -> RiskLimits:
        """The limits ``account`` is held to: its own once set, else the defaults."""
        return self.default_limits if account.limits is None else account.limits

    # --- snapshots -----------------------------------------------------------------------------------------------

    def to_snapshot(self) -> bytes:
        """The whole state as canonical bytes: equal states give equal bytes."""
        return encode(self._state)

    @classmethod
    def from_snapshot(
        cls,
        data: bytes,
        *,
        default_limits: RiskLimits,
        instruments: Mapping[str, Instrument],
        order_memory: timedelta = ORDER_MEMORY,
    ) -> RiskEngine:
        """An engine that continues exactly where the one that wrote ``data`` stood; raises ``SnapshotError``."""
        engine = cls(default_limits, instruments, order_memory=order_memory)
        with localcontext(CONTEXT):
            engine._state = decode(data)
        engine._sequences = Sequences(engine._state.sequences)
        return engine

    # --- inputs --------------------------------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Event]:
        """Fold ``event`` into the state; the events risk derives from it (often none).

        Raises ``NotARiskInputError`` for an event risk does not consume, ``RiskLimitsError`` for limits out of
        range; the state is unchanged then, and the host dead-letters the event.
        """
        with localcontext(CONTEXT):
            return self._dispatch(type(event))(self, event)

    @singledispatchmethod
    def _handle(self, event: Event) -> list[Event]:
        raise NotARiskInputError(
            f"{type(event).__name__} is not an input of pre-trade risk",
            hint="risk reads orders, ticks, executions and positions; it writes orders.checked and never reads it",
        )

    @_handle.register
    def _placed(self, event: OrderPlaced) -> list[Event]:
        account = self._account(event.account_id)
        now = self._advance(account, event)
        if event.order_id in account.open_orders or event.order_id in account.finished:
            # The order's first event again: the gateway appends it once more when a client retries a placement Kafka
            # did not confirm (the first may have landed). Risk decided the order already; a second decision would
            # land in the order's own stream and contradict the first (docs/STREAMS.md, "A placement appended twice").
            return []
        candidate = Candidate(
            order_id=event.order_id,
            client_order_id=event.client_order_id,
            symbol=event.instrument,
            side=event.side,
            order_type=event.order_type,
            quantity=event.quantity,
            leaves=event.quantity,
            limit_price=event.limit_price,
            price_is_new=True,
            at=event.envelope.occurred_at,
            account=account,
            limits=self.limits_of(account),
            instrument=self.instruments.get(event.instrument),
            reference=reference_at(self._state.references.get(event.instrument, ()), event.envelope.occurred_at),
        )
        rejection = rules.first_failure(rules.NEW_ORDER_CHECKS, candidate)
        account.placed(event.client_order_id, now)
        sequence = self._next(account, event.order_id, event, now)
        if rejection is not None:
            return [
                OrderRejected(
                    envelope=derived_envelope(OrderRejected, event, event.order_id, sequence),
                    order_id=event.order_id,
                    account_id=event.account_id,
                    client_order_id=event.client_order_id,
                    instrument=event.instrument,
                    reason_code=rejection.code.value,
                    reason=rejection.reason,
                )
            ]
        order = OpenOrder(
            order_id=event.order_id,
            instrument=event.instrument,
            quote=candidate.known_instrument.quote,
            side=event.side,
            order_type=event.order_type,
            quantity=event.quantity,
            leaves=event.quantity,
            price=candidate.price,
        )
        account.accept(order, candidate.at)
        return [
            OrderAccepted(
                envelope=derived_envelope(OrderAccepted, event, event.order_id, sequence),
                order_id=event.order_id,
                account_id=event.account_id,
                client_order_id=event.client_order_id,
                instrument=event.instrument,
                side=event.side,
                order_type=event.order_type,
                time_in_force=event.time_in_force,
                quantity=event.quantity,
                limit_price=event.limit_price,
            )
        ]

    @_handle.register
    def _cancel_requested(self, event: CancelRequested) -> list[Event]:
        account = self._account(event.account_id)
        now = self._advance(account, event)
        order = account.open_orders.get(event.order_id)
        # Route by the instrument risk knows the order trades when it has it: that is where execution holds it.
        instrument = order.instrument if order is not None else event.instrument
        sequence = self._next(account, event.order_id, event, now)
        return [self._cancel(event, event.order_id, event.account_id, instrument, event.reason, sequence)]

    @_handle.register
    def _amend_requested(self, event: AmendRequested) -> list[Event]:
        account = self._account(event.account_id)
        now = self._advance(account, event)
        order = account.open_orders.get(event.order_id)
        if order is None:
            rejection: Rejection | None = Rejection(
                ReasonCode.ORDER_NOT_OPEN,
                f"order {event.order_id} is not working for account {event.account_id} as far as risk knows "
                f"(unknown, done, or another account's); an amend is checked against the order it changes",
            )
        else:
            rejection = self._check_amend(event, account, order)
        kind = AmendAccepted if rejection is None else AmendRejected
        envelope = derived_envelope(kind, event, event.order_id, self._next(account, event.order_id, event, now))
        if rejection is not None:
            return [
                AmendRejected(
                    envelope=envelope,
                    order_id=event.order_id,
                    account_id=event.account_id,
                    instrument=event.instrument,
                    reason_code=rejection.code.value,
                    reason=rejection.reason,
                )
            ]
        assert order is not None
        # Until the venue confirms it with OrderAmended, the order counts at the larger of before and after.
        pending = replace(
            order,
            amend_quantity=event.new_quantity if event.new_quantity is not None else order.amend_quantity,
            amend_price=event.new_limit_price if event.new_limit_price is not None else order.amend_price,
        )
        account.track(pending)
        return [
            AmendAccepted(
                envelope=envelope,
                order_id=event.order_id,
                account_id=event.account_id,
                instrument=order.instrument,
                new_quantity=event.new_quantity,
                new_limit_price=event.new_limit_price,
            )
        ]

    def _check_amend(self, event: AmendRequested, account: AccountRisk, order: OpenOrder) -> Rejection | None:
        # Weigh the order as it stands after every amend accepted so far, changed as this one asks.
        quantity = next(q for q in (event.new_quantity, order.amend_quantity, order.quantity) if q is not None)
        current_price = order.amend_price if order.amend_price is not None else order.limit_price
        candidate = Candidate(
            order_id=order.order_id,
            client_order_id=None,
            symbol=order.instrument,
            side=order.side,
            order_type=order.order_type,
            quantity=quantity,
            leaves=quantity - order.filled,
            limit_price=event.new_limit_price if event.new_limit_price is not None else current_price,
            price_is_new=event.new_limit_price is not None,
            at=event.envelope.occurred_at,
            account=account,
            limits=self.limits_of(account),
            instrument=self.instruments.get(order.instrument),
            reference=reference_at(self._state.references.get(order.instrument, ()), event.envelope.occurred_at),
            replaces=order,
        )
        return rules.first_failure(rules.AMEND_CHECKS, candidate)

    @_handle.register
    def _limits_set(self, event: RiskLimitsSet) -> list[Event]:
        limits = RiskLimits.from_event(event)
        account = self._account(event.account_id)
        self._advance(account, event)
        account.limits = limits
        return []

    @_handle.register
    def _kill_switch(self, event: KillSwitchToggled) -> list[Event]:
        account = self._account(event.account_id)
        self._advance(account, event)
        account.kill_switch = event.engaged
        if not event.engaged:
            return []
        return [
            self._cancel(
                event,
                order.order_id,
                event.account_id,
                order.instrument,
                KILL_SWITCH_REASON,
                self._sequences.next(order.order_id),
            )
            for order in account.open_orders.values()
        ]

    def _cancel(
        self, trigger: Event, order_id: str, account_id: str, instrument: str, reason: str | None, sequence: int
    ) -> Event:
        return CancelAccepted(
            envelope=derived_envelope(CancelAccepted, trigger, order_id, sequence),
            order_id=order_id,
            account_id=account_id,
            instrument=instrument,
            reason=reason,
        )

    @_handle.register
    def _tick(self, event: TickIngested) -> list[Event]:
        if event.instrument not in self.instruments:
            return []
        if event.bid is not None and event.ask is not None:
            price = (event.bid + event.ask) / 2
        elif event.last is not None:
            price = event.last
        else:
            return []
        history = self._state.references.setdefault(event.instrument, [])
        observe(history, Reference(price, event.envelope.occurred_at), event.envelope.recorded_at)
        return []

    @_handle.register
    def _filled(self, event: OrderFilled) -> list[Event]:
        order = self._open_order(event.account_id, event.order_id)
        if order is not None:
            account = self._state.accounts[event.account_id]
            if completes(event.is_final, event.leaves_quantity):
                account.forget(order.order_id, self._now(account, event))
            else:
                account.track(replace(order, leaves=event.leaves_quantity))
        return []

    @_handle.register
    def _cancelled(self, event: OrderCancelled) -> list[Event]:
        self._done(event, event.account_id, event.order_id)
        return []

    @_handle.register
    def _expired(self, event: OrderExpired) -> list[Event]:
        self._done(event, event.account_id, event.order_id)
        return []

    @_handle.register
    def _cancel_rejected(self, event: CancelRejected) -> list[Event]:
        return []  # the order is unchanged, and so is what risk knows of it

    @_handle.register
    def _amended(self, event: OrderAmended) -> list[Event]:
        order = self._open_order(event.account_id, event.order_id)
        if order is not None:
            account = self._state.accounts[event.account_id]
            if event.leaves_quantity <= 0:
                account.forget(order.order_id, self._now(account, event))
            else:
                limit_price = event.limit_price if order.order_type is OrderType.LIMIT else None
                account.track(amended(order, event.quantity, limit_price, event.leaves_quantity))
        return []

    @_handle.register
    def _amend_refused(self, event: OrderAmendRejected) -> list[Event]:
        # The order is as it was: it counts at its confirmed size and price again.
        order = self._open_order(event.account_id, event.order_id)
        if order is not None:
            self._state.accounts[event.account_id].track(replace(order, amend_quantity=None, amend_price=None))
        return []

    @_handle.register
    def _position(self, event: PositionChanged) -> list[Event]:
        day = event.envelope.occurred_at.astimezone(UTC).date()
        instrument = self.instruments.get(event.instrument)
        # A position in an instrument no longer in the registry still counts, in a currency of its own.
        quote = instrument.quote if instrument is not None else event.instrument
        account = self._account(event.account_id)
        account.apply_position(event.instrument, quote, event.quantity, event.realized_pnl, day)
        return []

    # singledispatchmethod builds a bound wrapper on every call (Python 3.11: ≈ 2 µs, a few per cent of an
    # event's cost); its dispatcher, looked up by the event's type, is the same table without it.
    _dispatch = staticmethod(_handle.dispatcher.dispatch)

    def _account(self, account_id: str) -> AccountRisk:
        account = self._state.accounts.get(account_id)
        if account is None:
            account = self._state.accounts[account_id] = AccountRisk(account_id=account_id)
        return account

    def _open_order(self, account_id: str, order_id: str) -> OpenOrder | None:
        """The order if risk holds it open for that account (execution reports of others change nothing)."""
        account = self._state.accounts.get(account_id)
        return None if account is None else account.open_orders.get(order_id)

    def _done(self, event: Event, account_id: str, order_id: str) -> None:
        if self._open_order(account_id, order_id) is not None:
            account = self._state.accounts[account_id]
            account.forget(order_id, self._now(account, event))

    # --- what is kept, and for how long --------------------------------------------------------------------------

    def _advance(self, account: AccountRisk, event: Event) -> datetime:
        """The account's event time after ``event`` (an input on ``orders``), once what it no longer needs is gone.

        Runs before the input is decided, so whether a client order id is still taken depends only on the account's
        inputs up to this one: the same log forgets the same things, replayed whole or from a checkpoint.
        """
        now = account.advance(event.envelope.occurred_at)
        for order_id in account.forget_before(now - self.order_memory):
            del self._state.sequences[order_id]
        return now

    @staticmethod
    def _now(account: AccountRisk, event: Event) -> datetime:
        """When an execution report finished an order, in the account's event time (its own, if it has none yet)."""
        return event.envelope.occurred_at if account.now is None else account.now

    def _next(self, account: AccountRisk, order_id: str, trigger: Event, now: datetime) -> int:
        """The sequence on ``orders.checked`` of what ``trigger`` derives for ``order_id``.

        Risk counts the stream of an order it holds: working, placed now, or finished within the order memory (and
        then remembered for another order memory). An order it holds no count for — never seen by this account, or
        forgotten — gets a number from the request itself, above any count and unique with it: numbering from 1
        again would give the answer the event id of the order's first decision.
        """
        if order_id in account.open_orders:
            return self._sequences.next(order_id)
        if order_id in account.finished or isinstance(trigger, OrderPlaced):
            account.touch(order_id, now)
            return self._sequences.next(order_id)
        return untracked_sequence(trigger)
