"""One order, read through every route that tells its status (the ?wait= answer, GET /v1/orders, GET
/v1/orders/{id}, GET /v1/accounts/{id}/state): the same spelling everywhere, through the real API, workers and
projector on the real stack."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from commands import decide
from commands.decide import Stamp
from commands.gateway import Appended
from commands.models import PlaceOrder
from deploy.local.stack import Endpoints
from schemas.events import OrderPlaced
from schemas.settings import RegistrySettings
from streams.eventlog import KafkaEventLog
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.api_server import ApiServer, api_server
from tests.support.independent import IndependentReader
from tests.support.pipeline import start_projector
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration

ACCOUNT = f"ACC-A{uuid.uuid4().int % 29 + 1}"
BID, ASK = Decimal("40000.00"), Decimal("40001.00")
QUOTE = {"instrument": "BTCUSDT", "bid": str(BID), "ask": str(ASK), "bid_size": "1", "ask_size": "0.2"}


@pytest.fixture(scope="module")
def served(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    prefix = f"status-{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("status")
    with api_server(endpoints, workdir, prefix, TRADECORE_ORDER_WAIT_TIMEOUT_S="20") as api:
        worker = start_worker(endpoints, prefix, ["risk", "execution", "executions-by-account"], workdir / "worker.log")
        projector = start_projector(endpoints, prefix, workdir / "project.log")
        try:
            yield api
        finally:
            for proc in (worker, projector):
                proc.send_signal(signal.SIGTERM)
            for proc in (worker, projector):
                proc.wait(60)


def read_until(api: ApiServer, path: str, done: Any, **params: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        with api.client("alice") as alice:
            answer = alice.get(path, params=params)
        body: dict[str, Any] = answer.json()
        if answer.status_code == 200 and done(body):
            return body
        assert time.monotonic() < deadline, f"{path} never showed it: {answer.status_code} {body}"
        time.sleep(0.5)


def test_a_partly_filled_order_reads_the_same_status_on_every_route(served: ApiServer) -> None:
    with served.client("adam") as admin:
        sent = admin.post("/v1/ticks", json={"source": "status", "ticks": [{**QUOTE, "exchange_ts": _now()}]})
    assert sent.status_code == 202, sent.text
    time.sleep(0.5)  # the reference price is in the log before the order
    order = _order("status", ASK)
    with served.client("alice") as alice:
        _risk_decides(alice, order)
        placed = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=order)
        lower = alice.post("/v1/orders", params={"wait": "accepted"}, json={**order, "client_order_id": "x-1"})
    assert (placed.status_code, placed.json()["status"]) == (200, "ACCEPTED"), placed.text
    assert lower.status_code == 422 and "ACCEPTED" in lower.text  # one spelling in, too
    order_id = placed.json()["order_id"]

    # 0.2 of 0.5 fills against the quote's size; the rest rests. The projector may still be behind the ?wait=
    # answer (which reads the log): wait until the read model has moved past the order's first two states.
    one = read_until(served, f"/v1/orders/{order_id}", lambda o: o["status"] not in ("PENDING", "ACCEPTED"))
    listed = read_until(served, "/v1/orders", lambda page: page["items"], account_id=ACCOUNT, status="PARTIALLY_FILLED")
    state = read_until(  # the state reads executions.by-account, which may be behind the read model too
        served,
        f"/v1/accounts/{ACCOUNT}/state",
        lambda s: s["open_orders"] and all(o["status"] not in ("PENDING", "ACCEPTED") for o in s["open_orders"]),
        as_of=_now(),
    )
    assert one["status"] == "PARTIALLY_FILLED" and Decimal(one["filled_quantity"]) == Decimal("0.2")
    assert [(o["order_id"], o["status"]) for o in listed["items"]] == [(order_id, "PARTIALLY_FILLED")]
    assert [(o["order_id"], o["status"]) for o in state["open_orders"]] == [(order_id, "PARTIALLY_FILLED")]


def test_an_order_whose_placement_was_appended_twice_reads_as_one_order(
    served: ApiServer, registry_settings: RegistrySettings
) -> None:
    """A client retried a placement Kafka had not confirmed, and both appends landed (the gateway appends the same
    OrderPlaced again): risk decides the order once, and the read model keeps it as placed the first time."""
    order = _order("twice", BID - 100)  # rests: below the bid
    with served.client("adam") as admin:
        admin.post("/v1/ticks", json={"source": "twice", "ticks": [{**QUOTE, "exchange_ts": _now()}]})
    time.sleep(0.5)
    with served.client("alice") as alice:
        _risk_decides(alice, order)
        placed = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=order)
        assert (placed.status_code, placed.json()["status"]) == (200, "ACCEPTED"), placed.text
        again = decide.place_order(PlaceOrder.model_validate(order), Stamp(datetime.now(UTC), "retried"))
        assert asyncio.run(_append(served, registry_settings, again)), "appended again"
        after = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=_order("after", BID - 100))
    assert (after.status_code, after.json()["status"]) == (200, "ACCEPTED"), after.text  # risk read past the copy

    reader = IndependentReader(served.endpoints.kafka_bootstrap, served.endpoints.schema_registry_url)
    try:
        log = reader.topic(served.topic_prefix + "orders")
        checked = reader.topic(served.topic_prefix + "orders.checked")
    finally:
        reader.close()
    order_id = placed.json()["order_id"]
    placements = [e for e in log if e["order_id"] == order_id and e["envelope"]["event_type"] == "OrderPlaced"]
    decisions = [e["envelope"]["event_type"] for e in checked if e["order_id"] == order_id]
    assert len(placements) == 2 and decisions == ["OrderAccepted"]
    read_until(served, f"/v1/orders/{after.json()['order_id']}", lambda o: o["status"] == "ACCEPTED")
    one = read_until(served, f"/v1/orders/{order_id}", lambda o: o["status"] == "ACCEPTED")
    assert datetime.fromisoformat(one["placed_at"]) == placements[0]["envelope"]["occurred_at"]


async def _append(api: ApiServer, registry_settings: RegistrySettings, event: OrderPlaced) -> bool:
    settings = KafkaSettings(bootstrap_servers=api.endpoints.kafka_bootstrap, topic_prefix=api.topic_prefix)
    log = KafkaEventLog(settings, registry_client(registry_settings))
    try:
        [where] = await log.append([event])
        return isinstance(where, Appended)
    finally:
        log.close()


def _risk_decides(alice: Any, order: dict[str, str]) -> None:
    """The workers start on a busy machine: wait until risk decides (a collared order: REJECTED)."""
    deadline = time.monotonic() + 180
    while True:
        far = {**order, "client_order_id": f"warm-{uuid.uuid4().hex[:8]}", "limit_price": str(ASK * 2)}
        warm = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=far)
        if warm.status_code == 200:
            break
        assert time.monotonic() < deadline, f"risk never decided: {warm.text}"
    assert warm.json()["status"] == "REJECTED"


def _order(name: str, price: Decimal) -> dict[str, str]:
    return {
        "account_id": ACCOUNT,
        "client_order_id": f"{name}-{uuid.uuid4().hex[:8]}",
        "instrument": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "quantity": "0.5",
        "limit_price": str(price),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()
