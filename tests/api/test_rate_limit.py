"""Commands are rate limited per account: 429 with Retry-After, and other accounts are not affected."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from deploy.local.stack import Endpoints
from tests.api.conftest import order
from tests.support.api_server import ApiServer, api_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def strict_api(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    prefix = f"rl-{uuid.uuid4().hex[:8]}."
    with api_server(endpoints, tmp_path_factory.mktemp("rl"), prefix, TRADECORE_RATE_LIMIT="5/minute") as server:
        yield server


def within_one_window(seconds: float) -> None:
    """Wait, if need be, until the next ``seconds`` fall inside one minute window. The account limiter is a sliding
    window *counter* (limits' approximation: the previous minute-aligned window's count, weighted by how much of it
    is still in the last minute), so a burst straddling a window boundary may pass one more than the limit."""
    into = time.time() % 60
    if into > 60 - seconds:
        time.sleep(60 - into + 0.1)


def test_the_sixth_command_in_a_minute_is_refused_with_retry_after(strict_api: ApiServer) -> None:
    within_one_window(15)
    with strict_api.client("alice") as http:
        answers = [http.post("/v1/orders", json=order("ACC-A1")) for _ in range(6)]
        other_account = http.post("/v1/orders", json=order("ACC-A2"))
        cancel_on_limited = http.delete(f"/v1/orders/{answers[0].json()['order_id']}")
    assert [a.status_code for a in answers] == [202] * 5 + [429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "ACC-A1" in refused.json()["detail"]
    assert other_account.status_code == 202
    assert cancel_on_limited.status_code == 429  # cancels and amends count against the order's account too
