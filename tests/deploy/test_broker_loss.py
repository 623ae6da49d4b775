"""A broker lost under a steady flow of orders, on a three-broker cluster of its own (replication 3, min ISR 2).

What a desk must be able to count on while Kafka fails over: an order the API acknowledged is in the log exactly
once, risk decides every order once, and the processors and the projector carry on after the broker returns.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from deploy.local.settings import StackSettings
from deploy.local.stack import Endpoints, LocalStack
from streams.host.config import HostConfig
from streams.settings import KafkaSettings
from tests.api.conftest import order
from tests.support.api_server import ApiServer, api_server
from tests.support.independent import IndependentReader
from tests.support.pipeline import start_projector
from tests.support.ports import free_port_block
from tests.support.workers import said, start_worker

pytestmark = pytest.mark.integration

ACCOUNTS = [f"ACC-A{i}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, endpoints: Endpoints) -> Iterator[tuple[LocalStack, Endpoints]]:
    """Three brokers of this module's own; Postgres and the registry are the suite's (they are not under test)."""
    base = free_port_block((0, 1, 100, 101, 200, 201))
    settings = StackSettings(stack_dir=tmp_path_factory.mktemp("brokers") / ".stack", kafka_port=base)
    stack = LocalStack(
        settings,
        environ={"DATABASE_URL": endpoints.database_url, "SCHEMA_REGISTRY_URL": endpoints.schema_registry_url},
    )
    try:
        yield stack, stack.up(brokers=3, report=lambda _: None)
    finally:
        stack.down(report=lambda _: None)


@dataclass
class Flow:
    """Orders posted at a steady rate from another thread, with what the API answered to each."""

    api: ApiServer
    rate_per_s: float = 40.0
    acked: dict[str, str] = field(default_factory=dict)  # client order id -> order id, for every 2xx
    acked_at: list[float] = field(default_factory=list)  # when each 2xx came (time.monotonic())
    refused: Counter[int] = field(default_factory=Counter)  # status -> count, for everything else
    slowest_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Flow:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)

    def _run(self) -> None:
        with self.api.client("alice") as http:
            i = 0
            while not self._stop.is_set():
                body = order(ACCOUNTS[i % len(ACCOUNTS)])
                started = time.monotonic()
                try:
                    answer = http.post("/v1/orders", json=body, timeout=60)
                except httpx.TransportError:
                    self.refused[0] += 1
                else:
                    if answer.is_success:
                        self.acked[str(body["client_order_id"])] = answer.json()["order_id"]
                        self.acked_at.append(time.monotonic())
                    else:
                        self.refused[answer.status_code] += 1
                elapsed = time.monotonic() - started
                self.slowest_s = max(self.slowest_s, elapsed)
                i += 1
                self._stop.wait(max(0.0, 1 / self.rate_per_s - elapsed))


def broker_pid(stack: LocalStack, name: str) -> int:
    [row] = [row for row in stack.status() if row.name == name]
    assert row.pid is not None, f"{name} is not running: {row}"
    return row.pid


def events_of(reader: IndependentReader, topic: str, types: set[str]) -> list[dict[str, Any]]:
    partitions = KafkaSettings().partitions
    return [e for e in reader.topic(topic, partitions) if e["envelope"]["event_type"] in types]


def wait_for_decisions(reader: IndependentReader, prefix: str, order_ids: set[str], timeout_s: float) -> Counter[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        decided = Counter(
            str(e["order_id"]) for e in events_of(reader, f"{prefix}orders.checked", {"OrderAccepted", "OrderRejected"})
        )
        if order_ids <= set(decided) or time.monotonic() > deadline:
            return decided
        time.sleep(2)


def test_one_broker_killed_and_restarted_loses_and_duplicates_no_acknowledged_order(
    cluster: tuple[LocalStack, Endpoints], tmp_path: Path
) -> None:
    stack, endpoints = cluster
    prefix = f"brokers-{uuid.uuid4().hex[:8]}."
    with api_server(endpoints, tmp_path, prefix, TRADECORE_RATE_LIMIT="1000/second") as api:
        worker = start_worker(endpoints, prefix, ["risk"], tmp_path / "worker.log")
        projector = start_projector(endpoints, prefix, tmp_path / "projector.log")
        try:
            with Flow(api) as flow:
                time.sleep(8)
                psutil.Process(broker_pid(stack, "kafka-2")).kill()
                killed = time.monotonic()
                time.sleep(20)
                stack.up(brokers=3, report=lambda _: None)
                back = time.monotonic()
                time.sleep(8)
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert projector.poll() is None, (tmp_path / "projector.log").read_text()[-3000:]

            reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
            try:
                placed = Counter(
                    str(e["client_order_id"]) for e in events_of(reader, f"{prefix}orders", {"OrderPlaced"})
                )
                acked = set(flow.acked)
                # Orders went through while the broker was down and after it came back (counts, not a rate: how
                # many a loaded machine manages varies).
                during = sum(killed <= t < back for t in flow.acked_at)
                after = sum(t >= back for t in flow.acked_at)
                assert during >= 20 and after >= 20, (
                    f"too few orders to prove anything: {during}, {after}, {flow.refused}"
                )
                assert acked - set(placed) == set(), "acknowledged orders missing from the log"
                assert [c for c, n in placed.items() if n > 1] == [], "orders appended more than once"
                # A consumer wedged by the failover is the host's watchdog's to replace, once it has taken nothing
                # for stall_ms (streams.host.watchdog): the wait allows for that and a rebuild after it.
                wait_s = HostConfig().stall_ms / 1000 + 60
                decided = wait_for_decisions(reader, prefix, set(flow.acked.values()), timeout_s=wait_s)
                undecided = set(flow.acked.values()) - set(decided)
                assert undecided == set(), (
                    f"{len(undecided)} order(s) risk never decided; the worker's last lines:\n"
                    + said(tmp_path / "worker.log", 30)
                )
                assert [o for o, n in decided.items() if n > 1] == [], "orders decided more than once"
            finally:
                reader.close()
            # The projector carried on: the last acknowledged order is readable.
            last = list(flow.acked.values())[-1]
            with api.client("alice") as http:
                deadline = time.monotonic() + 60
                while http.get(f"/v1/orders/{last}").status_code != 200:
                    assert time.monotonic() < deadline, (tmp_path / "projector.log").read_text()[-3000:]
                    time.sleep(1)
        finally:
            for proc in (worker, projector):
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_with_fewer_brokers_than_min_insync_the_api_answers_503_and_recovers(
    cluster: tuple[LocalStack, Endpoints], tmp_path: Path
) -> None:
    stack, endpoints = cluster
    prefix = f"brokers-{uuid.uuid4().hex[:8]}."
    # Each refused order waits out the append timeout: 3 s here rather than the default 10 s (20 s of make test).
    appending_s = 3
    with (
        api_server(
            endpoints,
            tmp_path,
            prefix,
            TRADECORE_RATE_LIMIT="1000/second",
            TRADECORE_APPEND_TIMEOUT_MS=str(appending_s * 1000),
        ) as api,
        api.client("alice") as http,
    ):
        assert http.post("/v1/orders", json=order("ACC-A1")).status_code == 202
        for name in ("kafka-2", "kafka-3"):
            psutil.Process(broker_pid(stack, name)).kill()
        outage: list[tuple[int, float]] = []
        for i in range(3):
            started = time.monotonic()
            answer = http.post("/v1/orders", json=order(f"ACC-A{i + 2}"), timeout=120)
            outage.append((answer.status_code, time.monotonic() - started))
        stack.up(brokers=3, report=lambda _: None)
        deadline = time.monotonic() + 180
        while (answer := http.post("/v1/orders", json=order("ACC-A9"))).status_code != 202:
            assert time.monotonic() < deadline, answer.text
            time.sleep(1)
        # Refused within the append timeout plus scheduling; never a 2xx that nothing backs.
        assert [status for status, _ in outage] == [503, 503, 503], outage
        assert max(took for _, took in outage) < appending_s + 20, outage
