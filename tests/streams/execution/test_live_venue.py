"""The live venue adapter (`tradecore live-venue binance`) against a local Binance, on real Kafka.

Orders of the live instrument go to the exchange once each, whatever happens to the adapter or the connection;
what the exchange reports comes back as the execution events, with the exchange's exact numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from deploy.local.stack import Endpoints
from schemas.events import CancelAccepted, Event, OrderAccepted, OrderType, Side, TimeInForce
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support import events as examples
from tests.support.fake_exchange import API_KEY, SECRET, FakeBinance, cli_options, serve
from tests.support.independent import read_topic
from tests.support.workers import run_with_kills

pytestmark = pytest.mark.integration
TRADECORE = str(Path(sys.executable).with_name("tradecore"))
TERMINAL = {"OrderCancelled", "OrderExpired"}


class OrderDesk:
    """Writes what risk would write to ``orders.checked``: accepted orders and cancels."""

    def __init__(self, settings: KafkaSettings, registry: RegistrySettings) -> None:
        client = registry_client(registry)
        register_all(client, settings.topic_prefix)
        self._serializer = EventSerializer(client, "orders.checked", topic_prefix=settings.topic_prefix)
        self._producer = kafka.producer(settings)
        self.accepted: dict[str, OrderAccepted] = {}
        self.cancels: dict[str, CancelAccepted] = {}

    def _send(self, event: Event) -> None:
        s = self._serializer
        self._producer.produce(s.topic, key=s.key(event), value=s.serialize(event), timestamp=event_time_ms(event))
        assert self._producer.flush(30) == 0

    def order(
        self,
        order_type: str,
        side: str,
        quantity: str,
        limit: str | None = None,
        tif: str = "GTC",
        instrument: str = "BTCUSDT",
    ) -> OrderAccepted:
        order_id = str(uuid.uuid4())
        event = examples.order_accepted(
            envelope=_envelope(OrderAccepted, order_id, 1),
            order_id=order_id,
            client_order_id=f"c-{order_id[:8]}",
            instrument=instrument,
            side=Side(side),
            order_type=OrderType(order_type),
            time_in_force=TimeInForce(tif),
            quantity=Decimal(quantity),
            limit_price=None if limit is None else Decimal(limit),
        )
        self.accepted[order_id] = event
        self._send(event)
        return event

    def cancel(self, order: OrderAccepted, reason: str = "desk says so") -> CancelAccepted:
        event = examples.cancel_accepted(
            envelope=_envelope(CancelAccepted, order.order_id, 2),
            order_id=order.order_id,
            account_id=order.account_id,
            instrument=order.instrument,
            reason=reason,
        )
        self.cancels[str(event.envelope.event_id)] = event
        self._send(event)
        return event


def _envelope(event: type[Event], order_id: str, sequence: int) -> Any:
    now = datetime.now(UTC)
    return examples.envelope(
        event, event_id=uuid.uuid4(), aggregate_id=order_id, sequence=sequence, occurred_at=now, recorded_at=now
    )


def start_adapter(endpoints: Endpoints, prefix: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **endpoints.as_env(),
        "TRADECORE_TOPIC_PREFIX": prefix,
        "TRADECORE_VENUE_LIVE_INSTRUMENTS": '["BTCUSDT"]',
        "TRADECORE_EXCHANGE_API_KEY": API_KEY,
        "TRADECORE_EXCHANGE_SECRET": SECRET,
        "TRADECORE_EXCHANGE_TIMEOUT_MS": "1000",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [TRADECORE, "live-venue", "binance", "--poll-interval", "0.2", *cli_options(url)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def executions(endpoints: Endpoints, prefix: str) -> list[dict[str, Any]]:
    return read_topic(endpoints.kafka_bootstrap, endpoints.schema_registry_url, prefix + "executions")


def by_order(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in found:
        grouped[event["order_id"]].append(event)
    return grouped


def finished(events: list[dict[str, Any]]) -> bool:
    return any(e["envelope"]["event_type"] in TERMINAL or e.get("is_final") for e in events)


def wait_until(condition: Any, timeout_s: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def market() -> Iterator[tuple[FakeBinance, str]]:
    with serve() as found:
        yield found


@pytest.fixture
def desk(topics: KafkaSettings, registry_settings: RegistrySettings) -> OrderDesk:
    return OrderDesk(topics, registry_settings)


def test_orders_fills_cancels_and_refusals_map_to_executions(
    endpoints: Endpoints, topics: KafkaSettings, desk: OrderDesk, market: tuple[FakeBinance, str], tmp_path: Path
) -> None:
    exchange, url = market
    prefix = topics.topic_prefix
    taken = desk.order("MARKET", "BUY", "0.01", tif="IOC")
    resting = desk.order("LIMIT", "SELL", "0.02", limit="39445.00")  # above the bid: rests, fills when it rises
    parked = desk.order("LIMIT", "BUY", "0.03", limit="39000.00")  # far below: never fills
    missed = desk.order("LIMIT", "BUY", "0.04", limit="39100.00", tif="IOC")
    too_big = desk.order("MARKET", "BUY", "100", tif="IOC")  # 100 BTC: ~3.9M USDT, the account holds 1M
    simulated = desk.order("LIMIT", "BUY", "1", limit="8000.0", instrument="XBTUSD")
    adapter = start_adapter(endpoints, prefix, url, tmp_path / "adapter.log")
    try:
        wait_until(lambda: len(exchange.orders) == 4, what="four orders at the exchange")
        desk.cancel(parked, reason="changed my mind")
        desk.cancel(taken)  # already filled
        (rests,) = [o for o in exchange.orders.values() if o.client_order_id == resting.order_id]
        while rests.status != "FILLED" and exchange.quote_at < len(exchange.quotes) - 1:
            exchange.step()  # the recorded bid rises through 39445.00
        grouped: dict[str, list[dict[str, Any]]] = {}

        def all_done() -> bool:
            grouped.update(by_order(executions(endpoints, prefix)))
            placed = [taken, resting, parked, missed, too_big]
            return all(finished(grouped.get(o.order_id, [])) for o in placed) and len(grouped[taken.order_id]) == 2

        wait_until(all_done, what="every order finished")
    finally:
        adapter.terminate()
        adapter.wait(60)
    log = (tmp_path / "adapter.log").read_text()
    at_exchange = {o.client_order_id: o for o in exchange.orders.values()}
    trades = {t["orderId"]: t for t in exchange.my_trades}

    assert set(at_exchange) == {taken.order_id, resting.order_id, parked.order_id, missed.order_id}, log
    assert simulated.order_id not in grouped, "other instruments stay with the simulated venue"

    fill, rejected_cancel = grouped[taken.order_id]
    exchange_trade = trades[at_exchange[taken.order_id].order_id]
    assert fill["envelope"]["event_type"] == "OrderFilled"
    assert (fill["fill_price"], fill["fill_quantity"]) == (Decimal(exchange_trade["price"]), Decimal("0.01"))
    # Binance took 0.1% of the BTC bought (0.00001 BTC): valued in USDT at the fill's price, as positions sum fees.
    assert exchange_trade["commission"] == "0.00001000" and exchange_trade["commissionAsset"] == "BTC"
    assert (fill["fee"], fill["fee_currency"]) == (
        (Decimal("0.00001") * fill["fill_price"]).quantize(Decimal("1e-8")),
        "USDT",
    )
    assert fill["liquidity"] == "TAKER" and fill["is_final"] and fill["leaves_quantity"] == 0
    assert fill["fill_id"] == f"{taken.order_id}-{exchange_trade['id']}"
    assert fill["envelope"]["occurred_at"] == datetime.fromtimestamp(exchange_trade["time"] / 1000, UTC)
    assert rejected_cancel["envelope"]["event_type"] == "CancelRejected"
    assert rejected_cancel["reason"] == "order already filled"

    (maker,) = grouped[resting.order_id]
    assert maker["liquidity"] == "MAKER" and maker["fill_price"] == Decimal("39445.00") and maker["is_final"]
    assert maker["fee"] == Decimal("0.78890000") and maker["fee_currency"] == "USDT"  # 0.1% of 788.90 USDT

    (cancelled,) = grouped[parked.order_id]
    assert cancelled["envelope"]["event_type"] == "OrderCancelled"
    assert (cancelled["cancelled_quantity"], cancelled["reason"]) == (Decimal("0.03"), "changed my mind")
    assert at_exchange[parked.order_id].status == "CANCELED"

    (expired,) = grouped[missed.order_id]
    assert expired["envelope"]["event_type"] == "OrderExpired" and expired["expired_quantity"] == Decimal("0.04")
    assert expired["reason"] == "expired at binance"

    (refused,) = grouped[too_big.order_id]
    assert refused["envelope"]["event_type"] == "OrderExpired" and refused["expired_quantity"] == Decimal(100)
    assert "rejected by binance: InsufficientFunds" in refused["reason"]
    assert "Account has insufficient balance for requested action." in refused["reason"]
    for events in grouped.values():
        assert [e["envelope"]["sequence"] for e in events] == list(range(1, len(events) + 1))


def test_each_order_reaches_the_exchange_once_through_kills_timeouts_and_drops(
    endpoints: Endpoints, topics: KafkaSettings, desk: OrderDesk, market: tuple[FakeBinance, str], tmp_path: Path
) -> None:
    exchange, url = market
    prefix = topics.topic_prefix
    exchange.stall_s = 2.5  # past the adapter's 1 s timeout: done at the exchange, the answer lost
    exchange.inject("stall", path="/api/v3/order", method="POST", times=2)
    exchange.inject("drop", path="/api/v3/myTrades", times=2)
    exchange.inject("429", path="/api/v3/order", method="POST", times=2)
    stop = threading.Event()
    orders: list[OrderAccepted] = []

    def trade() -> None:
        kinds = [
            ("MARKET", "BUY", None, "IOC"),
            ("LIMIT", "SELL", "39440.00", "GTC"),
            ("LIMIT", "BUY", "39420.00", "GTC"),
            ("MARKET", "SELL", None, "IOC"),
            ("LIMIT", "BUY", "39500.00", "IOC"),
        ]
        for i in range(40):
            if stop.is_set():
                return
            order_type, side, limit, tif = kinds[i % len(kinds)]
            orders.append(desk.order(order_type, side, f"0.0{i % 5 + 1}", limit=limit, tif=tif))
            if i >= 6 and orders[i - 6].time_in_force is TimeInForce.GTC:
                desk.cancel(orders[i - 6])
            exchange.step()
            time.sleep(0.25)
        for order in orders[-6:]:
            if order.time_in_force is TimeInForce.GTC:
                desk.cancel(order)

    trader = threading.Thread(target=trade)
    trader.start()

    def done() -> bool:
        if trader.is_alive():
            return False
        grouped = by_order(executions(endpoints, prefix))
        return len(orders) == 40 and all(finished(grouped.get(o.order_id, [])) for o in orders)

    try:
        landed = run_with_kills(
            lambda: start_adapter(endpoints, prefix, url, tmp_path / "adapter.log"),
            done,
            kills=4,
            interval_s=(2.0, 4.0),
            timeout_s=300,
        )
    finally:
        stop.set()
        trader.join()
    log = (tmp_path / "adapter.log").read_text()
    assert landed >= 3

    per_client_id = Counter(o.client_order_id for o in exchange.orders.values())
    assert set(per_client_id.values()) == {1}, "no order placed twice: " + log[-3000:]
    created = Counter(s for method, path, s in exchange.requests if (method, path) == ("POST", "/api/v3/order"))
    assert created[200] == len(exchange.orders) >= 20, created
    assert Counter(s for _, path, s in exchange.requests if path == "/api/v3/order")[429] == 2
    assert ("POST", "/api/v3/order") in exchange.stalled, "a create was carried out and its answer lost"

    found = executions(endpoints, prefix)
    assert len({e["envelope"]["event_id"] for e in found}) == len(found), "no event written twice"
    assert len({e["fill_id"] for e in found if "fill_id" in e}) == sum(1 for e in found if "fill_id" in e)
    grouped = by_order(found)
    trades_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in exchange.my_trades:
        trades_of[t["orderId"]].append(t)
    cancelled_of = {c.order_id for c in desk.cancels.values()}
    for order in orders:
        if order.order_id not in per_client_id:  # accepted and cancelled while the adapter was down: never sent
            (only,) = grouped[order.order_id]
            assert order.order_id in cancelled_of and only["envelope"]["event_type"] == "OrderCancelled"
            assert only["cancelled_quantity"] == order.quantity
    for at_exchange in exchange.orders.values():
        events = grouped[at_exchange.client_order_id]
        assert [e["envelope"]["sequence"] for e in events] == list(range(1, len(events) + 1))
        fills = [e for e in events if e["envelope"]["event_type"] == "OrderFilled"]
        assert sum(f["fill_quantity"] for f in fills) == at_exchange.executed, "every trade, once"
        assert sorted(f["fill_price"] for f in fills) == sorted(
            Decimal(t["price"]) for t in trades_of[at_exchange.order_id]
        )
        ends = [e for e in events if e["envelope"]["event_type"] in TERMINAL]
        assert len(ends) == (0 if at_exchange.status == "FILLED" else 1), events
    answered = Counter(
        e["envelope"]["causation_id"]
        for e in found
        if e["envelope"]["event_type"] in ("OrderCancelled", "CancelRejected")
    )
    for cancel_id in desk.cancels:
        assert answered[cancel_id] <= 1, "a cancel answered twice"


def test_live_venue_refuses_to_start_without_credentials_or_live_instruments(endpoints: Endpoints) -> None:
    base = {**os.environ, **endpoints.as_env()}
    base.pop("TRADECORE_EXCHANGE_API_KEY", None)
    no_keys = subprocess.run([TRADECORE, "live-venue", "binance"], env=base, capture_output=True, text=True, timeout=60)
    assert no_keys.returncode == 2
    assert "set TRADECORE_EXCHANGE_API_KEY and TRADECORE_EXCHANGE_SECRET" in no_keys.stderr
    keys = {**base, "TRADECORE_EXCHANGE_API_KEY": API_KEY, "TRADECORE_EXCHANGE_SECRET": SECRET}
    none_live = subprocess.run(
        [TRADECORE, "live-venue", "binance"], env=keys, capture_output=True, text=True, timeout=60
    )
    assert none_live.returncode == 1
    assert (
        "no instrument is configured live" in none_live.stderr
        and "TRADECORE_VENUE_LIVE_INSTRUMENTS" in none_live.stderr
    )
    assert SECRET not in none_live.stdout + none_live.stderr
