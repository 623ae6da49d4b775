"""`tradecore live-venue EXCHANGE`: execute the orders of live instruments at a real exchange through ccxt.

Reads ``orders.checked`` (``OrderAccepted``, ``CancelAccepted`` of the instruments in
``TRADECORE_VENUE_LIVE_INSTRUMENTS``; the simulated venue leaves those alone), calls ``create_order`` /
``cancel_order``, polls ``fetch_order`` and ``fetch_my_trades`` for the orders still working, and writes what the
exchange reports to ``executions`` through ``streams.execution.live.LiveBook``.

Never twice at the exchange
    Our order id is the exchange's client order id. A create whose answer is lost (timeout, dropped connection,
    5xx, rate limit) is never simply sent again: the adapter first looks the order up by client order id, and
    creates it only if the exchange does not have it. On start the adapter rebuilds from the log — every accepted
    live order in ``orders.checked``, every execution it wrote in ``executions`` — and looks up each order not yet
    finished before doing anything with it, so a kill between the exchange's answer and the Kafka commit neither
    places the order again nor loses what happened to it.

Exactly once in the log
    What one pass derives (new orders' fills, polls, cancels) is written in one Kafka transaction under a fixed
    transactional id: a restarted adapter fences its predecessor and aborts what it left open, then rebuilds from
    what was committed. Fills carry the exchange's trade id, so a trade is written once however often it is seen.
    Commits follow the processor host's policy (``streams.kafka.transactions``): a pass whose transaction cannot be
    settled starts over the same way, from the log with a new producer, looking up every order not yet finished.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ccxt
from tenacity import AttemptManager

from domain.instruments import Instrument
from schemas.contract_errors import EventDecodeError
from schemas.events import CancelAccepted, Event, OrderAccepted
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer, EventSerializer
from streams.errors import StreamsError
from streams.exchanges import Backoff, attempts, dec
from streams.execution.live import LiveBook, LiveOrder, order_request
from streams.host.processor import event_time_ms
from streams.kafka import OFFSET_BEGINNING, KafkaSettings
from streams.kafka.logreader import LogReader, Position, RawRecord
from streams.kafka.transactions import TransactionalProducer, TransactionUnsettled

log = logging.getLogger("tradecore.streams.live")
REFUSALS = (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest)  # the order, not the connection, is wrong


class LiveVenueError(StreamsError):
    """The live venue adapter cannot go on (misconfigured, or the exchange refuses us)."""


@dataclass
class AdapterStats:
    placed: int = 0
    looked_up: int = 0
    refused: int = 0
    cancels: int = 0
    events: int = 0
    retries: int = 0
    rebuilt_orders: int = 0
    restarts: int = 0


class LiveVenueAdapter:
    def __init__(
        self,
        client: Any,
        settings: KafkaSettings,
        registry: SchemaRegistry,
        instruments: Mapping[str, Instrument],
        live: Iterable[str],
        *,
        poll_interval_s: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.live = set(live)
        unknown = sorted(self.live - set(instruments))
        if not self.live or unknown:
            raise LiveVenueError(
                f"live instruments {', '.join(unknown)} are not in the instrument registry"
                if unknown
                else "no instrument is configured live",
                hint='set TRADECORE_VENUE_LIVE_INSTRUMENTS to instruments of the registry, e.g. ["BTCUSDT"]',
            )
        self.instruments = {symbol: instruments[symbol] for symbol in self.live}
        self.poll_interval_s = poll_interval_s
        self.backoff = backoff or Backoff()
        self.stats = AdapterStats()
        prefix = settings.topic_prefix
        self.book = LiveBook(client.id, self.instruments)
        self._orders_topic = prefix + "orders.checked"
        self._executions_topic = prefix + "executions"
        self._decode_orders = EventDeserializer(registry, "orders.checked", topic_prefix=prefix)
        self._decode_executions = EventDeserializer(registry, "executions", topic_prefix=prefix)
        self._encode = EventSerializer(registry, "executions", topic_prefix=prefix)
        self._markets: dict[str, str] = {}
        self._stop = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def run(
        self, stop: threading.Event, report: Callable[[AdapterStats], None] | None = None, report_every_s: float = 10
    ) -> None:
        """Rebuild from the log, settle what was left open, then work live until ``stop``; a pass whose transaction
        cannot be settled starts all that over (``streams.kafka.transactions``: its events may not be in the log)."""
        self._stop = stop
        while not stop.is_set():
            try:
                self._session(stop, report, report_every_s)
            except TransactionUnsettled as why:
                self.stats.restarts += 1
                log.warning("starting over from the log with a new producer: %s", why)

    def _session(
        self, stop: threading.Event, report: Callable[[AdapterStats], None] | None, report_every_s: float
    ) -> None:
        producer = TransactionalProducer(
            self.settings, f"{self.settings.topic_prefix}live-venue-{self.client.id}", "live-venue", **{"linger.ms": 2}
        )
        try:
            if not self._markets:
                self._call(self.client.load_markets)
                self._markets = self._symbols()
            ends = self._rebuild()
            orders = LogReader(self.settings, f"{self.settings.topic_prefix}live-venue-{self.client.id}")
            orders.assign(ends)
            try:
                self._work(producer, orders, stop, report, report_every_s)
            finally:
                orders.close()
        finally:
            producer.close()  # (its transactions' thread with it)

    def _work(
        self,
        producer: TransactionalProducer,
        orders: LogReader,
        stop: threading.Event,
        report: Callable[[AdapterStats], None] | None,
        report_every_s: float,
    ) -> None:
        """Settle what was left open, then take orders and poll the venue until ``stop``."""
        self._commit(producer, self._settle_open())
        polled = reported = time.monotonic()
        while not stop.is_set():
            derived: list[Event] = []
            for record in orders.batch(200, min(self.poll_interval_s, 0.2)):
                derived += self._on_record(record)
            if time.monotonic() - polled >= self.poll_interval_s:
                derived += self._poll_open()
                polled = time.monotonic()
            self._commit(producer, derived)
            if report is not None and time.monotonic() - reported >= report_every_s:
                report(self.stats)
                reported = time.monotonic()

    def _symbols(self) -> dict[str, str]:
        by_id = getattr(self.client, "markets_by_id", {}) or {}
        missing = [s for s in self.live if s not in by_id]
        if missing:
            raise LiveVenueError(f"{self.client.id} has no market {', '.join(missing)}")
        return {symbol: by_id[symbol][0]["symbol"] for symbol in self.live}

    # --- the log: rebuild and write ------------------------------------------------------------------------------
    def _rebuild(self) -> dict[Position, int]:
        """Fold ``orders.checked`` and our ``executions`` from the beginning into a fresh book; the end offsets of
        ``orders.checked``."""
        self.book = LiveBook(self.client.id, self.instruments)
        cancels: list[CancelAccepted] = []
        records, ends = self._read_all(self._orders_topic)
        for record in records:
            event = self._decoded(self._decode_orders, record)
            if isinstance(event, OrderAccepted) and event.instrument in self.live:
                self.book.accept(event)
            elif isinstance(event, CancelAccepted) and event.instrument in self.live:
                cancels.append(event)
        for record in self._read_all(self._executions_topic)[0]:
            event = self._decoded(self._decode_executions, record)
            if event is not None and getattr(event, "instrument", None) in self.live:
                self.book.recall(event)
        for cancel in cancels:
            order = self.book.orders.get(cancel.order_id)
            if str(cancel.envelope.event_id) not in self.book.answered_cancels and order and not order.finished:
                order.cancel = cancel  # sent, or about to be: settled with the order
        self.stats.rebuilt_orders = len(self.book.orders)
        log.info("rebuilt %d live orders, %d still open", len(self.book.orders), len(self.book.open_orders()))
        return ends

    def _read_all(self, topic: str) -> tuple[list[RawRecord], dict[Position, int]]:
        """Every committed record of ``topic`` up to its current end, and that end per partition."""
        reader = LogReader(self.settings, f"{self.settings.topic_prefix}live-venue-rebuild")
        try:
            ends = reader.ends(reader.partitions([topic]))
            reader.assign(dict.fromkeys(ends, OFFSET_BEGINNING))
            return [record for batch in reader.read(ends, max_records=500) for record in batch], ends
        finally:
            reader.close()

    def _decoded(self, decoder: EventDeserializer, record: RawRecord) -> Event | None:
        try:
            event: Event = decoder.deserialize(record.value)
            return event
        except EventDecodeError as err:
            log.warning("skipping undecodable %s[%d]@%d: %s", record.topic, record.partition, record.offset, err)
            return None

    def _commit(self, producer: TransactionalProducer, events: list[Event]) -> None:
        if not events:
            return
        producer.begin()
        for event in events:
            producer.send(
                self._encode.topic, self._encode.key(event), self._encode.serialize(event), event_time_ms(event)
            )
        producer.commit()
        self.stats.events += len(events)

    # --- records -------------------------------------------------------------------------------------------------
    def _on_record(self, record: RawRecord) -> list[Event]:
        event = self._decoded(self._decode_orders, record)
        if isinstance(event, OrderAccepted) and event.instrument in self.live:
            order = self.book.accept(event)
            return [] if order is None else self._place(order, look_up_first=False)
        if isinstance(event, CancelAccepted) and event.instrument in self.live:
            return self._cancel(event)
        return []

    def _settle_open(self) -> list[Event]:
        """After a restart: every order not finished is looked up before anything else is done with it, and a
        cancel left unanswered is sent (again: a cancel is harmless to repeat)."""
        derived: list[Event] = []
        for order in self.book.open_orders():
            derived += self._place(order, look_up_first=True)
            if order.cancel is not None and not order.finished:
                derived += self._cancel(order.cancel)
        return derived

    # --- the exchange --------------------------------------------------------------------------------------------
    def _place(self, order: LiveOrder, *, look_up_first: bool) -> list[Event]:
        symbol = self._markets[order.accepted.instrument]
        uncertain = look_up_first
        for attempt in self._attempts():
            with attempt:
                try:
                    if uncertain:
                        found = self._look_up(order)
                        if found is not None:
                            self.stats.looked_up += 1
                            return self._reconcile(order, found)
                        if order.cancel is not None:  # cancelled before it ever reached the exchange
                            return [self.book.never_placed_cancel(order)]
                    request = order_request(order.accepted)
                    uncertain = True  # from here it may reach the exchange: after a failure, look before placing again
                    created = self.client.create_order(
                        symbol, request["type"], request["side"], request["amount"], request["price"], request["params"]
                    )
                    self.stats.placed += 1
                    return self._reconcile(order, created)
                except REFUSALS as err:
                    self.stats.refused += 1
                    return [self.book.refused(order, _reason(err), datetime.now(UTC))]
        return []

    def _look_up(self, order: LiveOrder) -> dict[str, Any] | None:
        symbol = self._markets[order.accepted.instrument]
        try:
            found: dict[str, Any] = self.client.fetch_order(None, symbol, {"clientOrderId": order.order_id})
            return found
        except ccxt.OrderNotFound:
            return None

    def _reconcile(self, order: LiveOrder, report: dict[str, Any]) -> list[Event]:
        """Fills and end of ``order`` from its exchange report (asking for its trades when it traded)."""
        trades: list[dict[str, Any]] = []
        if (dec(report.get("filled")) or 0) > order.filled:
            symbol = self._markets[order.accepted.instrument]
            trades = self.client.fetch_my_trades(symbol, params={"orderId": report["id"]})
        return self.book.reported(order, report, trades)

    def _poll_open(self) -> list[Event]:
        derived: list[Event] = []
        for order in self.book.open_orders():
            derived += self._with_retries(functools.partial(self._poll, order))
        return derived

    def _poll(self, order: LiveOrder) -> list[Event]:
        found = self._look_up(order)
        if found is None:
            return []  # not at the exchange yet: ``_place`` owns it
        return self._reconcile(order, found)

    def _cancel(self, event: CancelAccepted) -> list[Event]:
        self.stats.cancels += 1
        refusal = self.book.refusal(event)
        if refusal:
            return [self.book.cancel_rejected(event, refusal)]
        order = self.book.orders[event.order_id]
        order.cancel = event
        symbol = self._markets[event.instrument]

        def cancel() -> list[Event]:
            with contextlib.suppress(ccxt.OrderNotFound):  # finished at the exchange meanwhile: its report says how
                self.client.cancel_order(None, symbol, {"clientOrderId": order.order_id})
            return self._poll(order)

        derived = self._with_retries(cancel)
        if str(event.envelope.event_id) not in self.book.answered_cancels:  # it did not cancel the order
            order.cancel = None
            reason = self.book.refusal(event) or f"{self.client.id} did not cancel it"
            derived.append(self.book.cancel_rejected(event, reason))
        return derived

    def _with_retries(self, call: Callable[[], list[Event]]) -> list[Event]:
        for attempt in self._attempts():
            with attempt:
                return call()
        return []

    def _call(self, call: Callable[[], Any]) -> Any:
        for attempt in self._attempts():
            with attempt:
                return call()
        return None

    def _attempts(self) -> Iterator[AttemptManager]:
        """Attempts at an exchange call, transient failures retried with backoff until the adapter is stopped."""
        return attempts(self.client, self.backoff, self._stop, self._retrying)

    def _retrying(self, err: BaseException, delay: float) -> None:
        self.stats.retries += 1
        log.warning("%s; retrying in %.1fs", f"{type(err).__name__}: {str(err)[:200]}", delay)


def _reason(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"
