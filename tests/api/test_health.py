"""Probes and metrics of the API process, as an operator's orchestrator and Prometheus see them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy import launch
from tests.api.conftest import order
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration


def sample(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample of a scrape (0 when the series does not exist yet)."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_healthz_answers_without_credentials(api: ApiServer) -> None:
    answer = httpx.get(f"{api.url}/healthz", timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "alive"})


def test_readyz_reports_each_dependency(api: ApiServer) -> None:
    answer = httpx.get(f"{api.url}/readyz", timeout=30)
    body = answer.json()
    assert (answer.status_code, body["status"]) == (200, "ready"), body
    checks = body["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "kafka": "ok",
        "schema_registry": "ok",
        "postgres": "ok",
        "projection_lag": "skipped",
    }
    assert checks["projection_lag"]["detail"].startswith("no projection has committed a checkpoint yet")
    assert f"{api.topic_prefix}orders has" in checks["kafka"]["detail"]


def test_request_and_order_metrics_move_with_the_requests_served(api: ApiServer, account: str) -> None:
    before = httpx.get(f"{api.url}/metrics", timeout=10).text
    with api.client("alice") as alice:
        for _ in range(3):
            assert alice.post("/v1/orders", json=order(account)).status_code == 202
        assert alice.post("/v1/orders", json=order(account, quantity="-1")).status_code == 422
        assert alice.delete("/v1/orders/no-such-order").status_code == 404
    after = httpx.get(f"{api.url}/metrics", timeout=10)
    assert after.headers["content-type"].startswith("text/plain")

    def moved(name: str, **labels: str) -> float:
        return sample(after.text, name, **labels) - sample(before, name, **labels)

    requests = "tradecore_http_requests_total"
    assert moved(requests, method="POST", route="/v1/orders", status="202") == 3
    assert moved(requests, method="POST", route="/v1/orders", status="422") == 1
    # Labelled by route template, not by the raw path (whose ids would make a series per order).
    assert moved(requests, method="DELETE", route="/v1/orders/{order_id}", status="404") == 1
    assert moved("tradecore_http_request_duration_seconds_count", method="POST", route="/v1/orders") == 4
    assert moved("tradecore_events_produced_total", processor="api", topic="orders") == 3
    # One group commit per order, sent one after another: each of its steps timed once per order.
    for step in ("claim", "append", "record"):
        assert moved("tradecore_order_commit_step_duration_seconds_count", step=step) == 3, step


def test_readyz_reports_the_read_models_lag_once_the_projector_runs(api: ApiServer, tmp_path: Path) -> None:
    projector = launch.start_projector(
        tmp_path / "projector.log", {**api.endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": api.topic_prefix}
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            check = httpx.get(f"{api.url}/readyz", timeout=30).json()["checks"]["projection_lag"]
            # The first probes may be skipped (no checkpoint yet) or, on a loaded machine, time out while the
            # check's reader connects; what a probe says once the projector has caught up is what matters.
            if check["status"] == "ok" or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        projector.stop()
    assert check["status"] == "ok", check
    assert check["detail"].startswith("every read model within")
