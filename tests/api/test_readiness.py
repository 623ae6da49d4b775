"""/readyz follows Postgres: not ready while it is down, ready again once it is back — and the first order after
takes no connection Postgres dropped — on a Postgres of the test's own (the shared stack's server is never
stopped)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from deploy.local import postgres
from deploy.local.settings import StackSettings
from deploy.local.stack import Endpoints
from tests.api.conftest import order
from tests.support.api_server import api_server
from tests.support.independent import read_topic
from tests.support.scratch import server_dir

pytestmark = pytest.mark.integration


class OwnPostgres(NamedTuple):
    settings: StackSettings  # what postgres.stop / postgres.start take
    endpoints: Endpoints  # the shared Kafka and registry, this Postgres


@pytest.fixture
def own_postgres(endpoints: Endpoints) -> Iterator[OwnPostgres]:
    with server_dir("pg-") as directory:
        settings = StackSettings(stack_dir=directory)
        postgres.start(settings)
        try:
            info = postgres.running(settings)
            assert info is not None
            yield OwnPostgres(
                settings, Endpoints(endpoints.kafka_bootstrap, postgres.url(info), endpoints.schema_registry_url)
            )
        finally:
            postgres.stop(settings)


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=30)


def wait_for(url: str, status: int, timeout_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = ready(url)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_readyz_fails_while_postgres_is_down_and_recovers_after(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    with (
        api_server(own_postgres.endpoints, tmp_path, f"ready-{uuid.uuid4().hex[:8]}.") as api,
        api.client("alice") as http,
    ):
        assert ready(api.url).status_code == 200
        # Orders before, one at a time: the command store's pool holds idle connections when Postgres goes.
        for i in range(3):
            assert http.post("/v1/orders", json=order("ACC-A1", client_order_id=f"before-{i}")).status_code == 202

        assert postgres.stop(own_postgres.settings)
        down = ready(api.url)
        body = down.json()
        assert (down.status_code, body["status"]) == (503, "not ready"), body
        assert body["checks"]["postgres"]["status"] == "failed"
        assert body["checks"]["postgres"]["detail"]  # says why
        assert body["checks"]["kafka"]["status"] == "ok"
        assert httpx.get(f"{api.url}/healthz", timeout=10).status_code == 200  # alive all the same

        postgres.start(own_postgres.settings)
        back = wait_for(api.url, 200)
        assert (back.status_code, back.json()["checks"]["postgres"]["status"]) == (200, "ok"), back.json()
        after = http.post("/v1/orders", json=order("ACC-A1", client_order_id="after"))
        assert after.status_code == 202, after.text


# Postgres stays down this long, as in a failover: psycopg_pool's own attempts to replace the connections it lost
# would be 8 s apart by then, and the order retried once Postgres is back would wait for the next one.
DOWN_S = 8.0
CONNECTION_WAIT_S = "2"  # how long the API lets a request wait for a connection before it answers 503


def test_while_postgres_is_down_orders_and_reads_get_503_and_the_order_retried_after_is_placed_once(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    endpoints = own_postgres.endpoints
    body = order("ACC-A1", client_order_id="while-down")
    with (
        api_server(
            endpoints, tmp_path, f"down-{uuid.uuid4().hex[:8]}.", TRADECORE_CONNECTION_WAIT_S=CONNECTION_WAIT_S
        ) as api,
        api.client("alice") as http,
    ):
        assert http.post("/v1/orders", json=order("ACC-A1")).status_code == 202  # the pool holds connections

        stopped = time.monotonic()
        assert postgres.stop(own_postgres.settings)
        down = http.post("/v1/orders", json=body)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert down.headers["retry-after"] == "1"
        assert "retry" in down.json()["detail"]
        read = http.get("/v1/positions")  # the read models live in the same Postgres
        assert (read.status_code, read.headers["content-type"]) == (503, "application/problem+json"), read.text

        time.sleep(max(0.0, stopped + DOWN_S - time.monotonic()))
        postgres.start(own_postgres.settings)
        wait_for(api.url, 200)
        again = http.post("/v1/orders", json=body)
        assert again.status_code == 202, again.text
        placed = [
            value
            for value in read_topic(
                endpoints.kafka_bootstrap, endpoints.schema_registry_url, api.topic_prefix + "orders"
            )
            if value["envelope"]["event_type"] == "OrderPlaced" and value["client_order_id"] == "while-down"
        ]
        assert [p["order_id"] for p in placed] == [again.json()["order_id"]]  # the refused attempt left nothing
        # Each pool tried to reconnect every half second all along, the live feed to listen each second, and each
        # said so once (then once each 30 s): not every attempt.
        logged = api.service.log.read_text().splitlines()
        failures = [line for line in logged if "error connecting in" in line]
        said = Counter(line.split("'")[1] for line in failures)
        most = 1 + int((time.monotonic() - stopped) // 30)
        assert set(said) == {"command-store", "read-models"} and max(said.values()) <= most, failures
        listening = [line for line in logged if line.startswith("live feed: listening failed")]
        assert 1 <= len(listening) <= most, listening
