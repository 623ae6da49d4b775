"""A worker's /metrics, scraped as Prometheus would while orders flow through risk, the venue and positions."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.stack import Endpoints
from schemas.events import Event
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import Output
from streams.host.runner import ProcessorHost
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.api.test_health import sample
from tests.support.api_server import ApiServer, api_server
from tests.support.events import order_placed, tick_ingested
from tests.support.quotes import first_quote, fresh_tick, limit_buy
from tests.support.workers import start_worker, start_worker_with_metrics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flow(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, str]]:
    prefix = f"metrics-{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("metrics")
    with api_server(endpoints, workdir, prefix, TRADECORE_ORDER_WAIT_TIMEOUT_S="30") as api:
        names = ["risk", "execution", "executions-by-account", "positions"]
        worker, metrics = start_worker_with_metrics(endpoints, prefix, names, workdir / "worker.log")
        try:
            yield api, metrics
        finally:
            worker.terminate()
            worker.wait(60)


def scrape_until(url: str, done: Callable[[str], bool], timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = httpx.get(url, timeout=10).text
        except httpx.TransportError:
            text = ""
        if (text and done(text)) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_processor_metrics_move_as_orders_are_decided_filled_and_dead_lettered(flow: tuple[ApiServer, str]) -> None:
    api, metrics = flow
    bid, ask = first_quote()
    with api.client("adam") as admin:
        assert admin.post("/v1/ticks", json=fresh_tick(bid, ask)).status_code == 202
    with api.client("alice") as alice:
        taker = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=limit_buy("ACC-A7", ask + 10))
        collared = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=limit_buy("ACC-A7", ask * 2))
    assert (taker.json()["status"], collared.json()["reason_code"]) == ("ACCEPTED", "PRICE_COLLAR")
    producer = kafka.producer(KafkaSettings(bootstrap_servers=api.endpoints.kafka_bootstrap))
    producer.produce(api.topic_prefix + "orders", key=b"ACC-A7", value=b"not an event")
    # Avro, but not an event of `orders`.
    client = registry_client(RegistrySettings(url=api.endpoints.schema_registry_url))
    ticks = EventSerializer(client, "ticks", topic_prefix=api.topic_prefix)  # (the namespace's subjects)
    producer.produce(api.topic_prefix + "orders", key=b"ACC-A7", value=ticks.serialize(tick_ingested()))
    assert producer.flush(30) == 0

    def settled(text: str) -> bool:
        return (
            sample(text, "tradecore_position_quantity", account="ACC-A7", instrument="BTCUSDT") == 0.5
            and sum(dead_letters(text, "risk").values()) == 2
            and lags(text, "risk", "orders") == [0.0] * 6
        )

    text = scrape_until(metrics, settled)
    assert settled(text), text
    # Every record risk took from `orders`: two orders and the two poison ones.
    assert sample(text, "tradecore_events_consumed_total", processor="risk", topic="orders") == 4
    assert sample(text, "tradecore_processing_latency_seconds_count", processor="risk", topic="orders") == 4
    assert sample(text, "tradecore_events_produced_total", processor="risk", topic="orders.checked") == 2
    assert sample(text, "tradecore_events_produced_total", processor="execution", topic="executions") == 1
    assert sample(text, "tradecore_orders_total", outcome="accepted", reason="") == 1
    assert sample(text, "tradecore_orders_total", outcome="rejected", reason="PRICE_COLLAR") == 1
    assert sample(text, "tradecore_orders_total", outcome="filled", reason="") == 1
    # By input topic and kind (the full reason is in each dead letter's headers).
    assert dead_letters(text, "risk") == {("orders", "undecodable"): 2}
    assert sample(text, "tradecore_transactions_total", processor="risk", outcome="committed") >= 1
    assert sample(text, "tradecore_transactions_total", processor="risk", outcome="aborted") == 0
    fee = sample(text, "tradecore_fees_paid", account="ACC-A7", instrument="BTCUSDT")
    assert fee > 0 and sample(text, "tradecore_realized_pnl", account="ACC-A7", instrument="BTCUSDT") == 0
    # Lag is reported for every partition a processor owns, and drains to 0 on an input written in transactions
    # (whose commit markers sit past the last record).
    text = scrape_until(metrics, lambda t: lags(t, "execution", "orders.checked") == [0.0] * 6)
    assert lags(text, "execution", "orders.checked") == [0.0] * 6


def lags(text: str, processor: str, topic: str) -> list[float]:
    return [
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "tradecore_consumer_lag"
        for s in family.samples
        if s.labels["processor"] == processor and s.labels["topic"] == topic
    ]


def test_a_metrics_port_already_taken_stops_the_worker_with_what_to_do(endpoints: Endpoints, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(endpoints, "taken.", ["risk"], tmp_path / "worker.log", "--metrics-port", str(port))
        assert worker.wait(60) == 1
    said = (tmp_path / "worker.log").read_text()
    assert f"cannot serve metrics on 127.0.0.1:{port}" in said and "--metrics-port" in said


def dead_letters(text: str, processor: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "tradecore_deadletters"
        for s in family.samples
        if s.name.endswith("_total") and s.labels["processor"] == processor
    }


class Refusing:
    """A processor that refuses every order with an error of its own."""

    name = "refusing"
    partitioned = ("orders",)
    broadcast = ()

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        raise LookupError(f"no account for {event.envelope.aggregate_id}")

    def reset(self) -> None:
        return None


def test_a_record_a_processor_refuses_is_counted_by_the_error_it_raised(
    topics: KafkaSettings, registry_settings: RegistrySettings
) -> None:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    orders = EventSerializer(client, "orders", topic_prefix=topics.topic_prefix)
    producer = kafka.producer(topics)
    producer.produce(orders.topic, key=b"ACC-1", value=orders.serialize(order_placed()))
    assert producer.flush(30) == 0
    labels = {"processor": "refusing", "topic": "orders", "reason": "LookupError"}
    host = ProcessorHost(Refusing(), topics, client)
    stop = threading.Event()
    runner = threading.Thread(target=host.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while REGISTRY.get_sample_value("tradecore_deadletters_total", labels) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        runner.join(60)
    assert REGISTRY.get_sample_value("tradecore_deadletters_total", labels) == 1
    assert REGISTRY.get_sample_value("tradecore_transactions_total", {"processor": "refusing", "outcome": "committed"})
