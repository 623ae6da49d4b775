"""Through the API and a real risk worker: a tick dated minutes ahead (a deployment that allows that much clock
skew) must not make the orders placed before its time stale; the reference is the latest tick at or before each
order's event time (issue 12, F4)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy.local.stack import Endpoints
from tests.api.conftest import order
from tests.support.api_server import ApiServer, api_server
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def with_risk(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    prefix = f"future-{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("future")
    with api_server(
        endpoints,
        workdir,
        prefix,
        TRADECORE_RATE_LIMIT="1000/second",
        TRADECORE_ORDER_WAIT_TIMEOUT_S="20",
        TRADECORE_TICK_MAX_AHEAD_S="900",  # lets a tick ten minutes ahead in, to show risk is not fooled by it
    ) as api:
        worker = start_worker(endpoints, prefix, ["risk"], workdir / "worker.log")
        try:
            yield api
        finally:
            worker.terminate()
            worker.wait(60)


def tick(api: ApiServer, at: datetime) -> None:
    body = {"instrument": "USDJPY", "bid": "104.001", "ask": "104.003", "exchange_ts": at.isoformat()}
    with api.client("adam") as adam:
        sent = adam.post("/v1/ticks", json={"source": "clock", "ticks": [body]})
    assert sent.status_code == 202, sent.text


def place(api: ApiServer) -> dict[str, Any]:
    body = order("ACC-A3", instrument="USDJPY", quantity="1", limit_price="104.002")
    with api.client("alice") as alice:
        answer = alice.post("/v1/orders", json=body, params={"wait": "ACCEPTED"})
    assert answer.status_code == 200, answer.text
    decided: dict[str, Any] = answer.json()
    return decided


def test_a_tick_from_the_future_does_not_make_later_orders_stale(with_risk: ApiServer) -> None:
    tick(with_risk, datetime.now(UTC))
    time.sleep(0.5)  # the present reference is in the log first
    tick(with_risk, datetime.now(UTC) + timedelta(minutes=10))
    time.sleep(0.5)
    before_fresh = place(with_risk)
    tick(with_risk, datetime.now(UTC))
    time.sleep(0.5)
    after_fresh = place(with_risk)

    assert (before_fresh["status"], before_fresh["reason_code"]) == ("ACCEPTED", None), before_fresh
    assert (after_fresh["status"], after_fresh["reason_code"]) == ("ACCEPTED", None), after_fresh
