"""The whole loop on the real stack: orders through the API, risk, the simulated venue, positions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from deploy.local.stack import Endpoints
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from tests.support.api_server import ApiServer, api_server
from tests.support.independent import IndependentReader
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration

QUOTES = market_file(BINANCE_QUOTES)


@pytest.fixture(scope="module")
def loop(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    prefix = f"loop-{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("loop")
    # A generous wait: the worker may still be starting when the first order arrives.
    with api_server(
        endpoints, workdir, prefix, TRADECORE_RATE_LIMIT="1000/second", TRADECORE_ORDER_WAIT_TIMEOUT_S="20"
    ) as api:
        worker = start_worker(endpoints, prefix, [], workdir / "worker.log")
        try:
            yield api
        finally:
            worker.terminate()
            worker.wait(60)


def events(reader: IndependentReader, api: ApiServer, topic: str, wanted: int, timeout_s: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = reader.topic(api.topic_prefix + topic)
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_an_order_is_checked_filled_and_lands_in_the_position(loop: ApiServer) -> None:
    quote = pl.read_parquet(QUOTES).row(0, named=True)
    bid, ask = Decimal(str(quote["bid"])), Decimal(str(quote["ask"]))
    now = datetime.now(UTC).isoformat()
    tick = {
        "instrument": "BTCUSDT",
        "bid": str(bid),
        "ask": str(ask),
        "bid_size": "2",
        "ask_size": "2",
        "exchange_ts": now,
    }
    with loop.client("adam") as admin:
        assert admin.post("/v1/ticks", json={"source": "loop-test", "ticks": [tick]}).status_code == 202
    time.sleep(1.0)  # the reference price is appended before the orders
    base = {"account_id": "ACC-A1", "instrument": "BTCUSDT", "side": "BUY", "time_in_force": "GTC"}
    with loop.client("alice") as alice:
        taker_answer = alice.post(
            "/v1/orders",
            params={"wait": "ACCEPTED"},
            json={
                **base,
                "client_order_id": f"buy-{uuid.uuid4().hex[:8]}",
                "order_type": "LIMIT",
                "quantity": "0.5",
                "limit_price": str(ask + 10),
            },
        )
        collared_answer = alice.post(
            "/v1/orders",
            params={"wait": "ACCEPTED"},
            json={
                **base,
                "client_order_id": f"buy-{uuid.uuid4().hex[:8]}",
                "order_type": "LIMIT",
                "quantity": "0.5",
                "limit_price": str((ask * 2).quantize(Decimal("0.01"))),
            },
        )
    taker, collared = taker_answer.json(), collared_answer.json()
    # ?wait=ACCEPTED answers with risk's decision once it is in the log.
    assert (taker_answer.status_code, taker["status"]) == (200, "ACCEPTED"), taker
    assert (collared_answer.status_code, collared["status"], collared["reason_code"]) == (
        200,
        "REJECTED",
        "PRICE_COLLAR",
    )

    reader = IndependentReader(loop.endpoints.kafka_bootstrap, loop.endpoints.schema_registry_url)
    checked = {e["order_id"]: e for e in events(reader, loop, "orders.checked", 2)}
    assert checked[taker["order_id"]]["envelope"]["event_type"] == "OrderAccepted"
    assert checked[collared["order_id"]]["envelope"]["event_type"] == "OrderRejected"
    assert checked[collared["order_id"]]["reason_code"] == "PRICE_COLLAR"

    [fill] = [e for e in events(reader, loop, "executions", 1) if e["order_id"] == taker["order_id"]]
    assert (fill["fill_price"], fill["fill_quantity"], fill["liquidity"]) == (ask, Decimal("0.5"), "TAKER")
    positions = events(reader, loop, "positions", 1)
    assert len(positions) == 1, positions
    [position] = positions
    assert (position["account_id"], position["quantity"], position["average_price"]) == ("ACC-A1", Decimal("0.5"), ask)
    # One causal chain from the HTTP command to the position.
    assert position["envelope"]["correlation_id"] == checked[taker["order_id"]]["envelope"]["correlation_id"]
    reader.close()
