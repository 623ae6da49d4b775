"""Read tokens (`?min_offset=topic:partition:offset`) on the real API: a token that can never be reached is a 422
naming `min_offset`, answered before any wait; a reachable one waits without starving the API of database
connections, a bounded number at a time per user (issue 12, F1 and F2)."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

BEYOND_INT32 = [
    ("/v1/orders", "orders:2147483648:0"),
    ("/v1/pnl", "positions:2147483648:0"),
    ("/v1/risk/rejections", "orders.checked:2147483648:0"),
    ("/v1/orders/some-order/events", "orders:2147483648:0"),
    ("/v1/orders", "orders:0:9223372036854775808"),
]


def names_min_offset(answer: httpx.Response) -> bool:
    return (
        answer.status_code == 422
        and answer.headers["content-type"] == "application/problem+json"
        and "min_offset" in [e["field"] for e in answer.json().get("errors", [])]
    )


@pytest.mark.parametrize(("path", "token"), BEYOND_INT32, ids=[f"{p} {t}" for p, t in BEYOND_INT32])
def test_a_partition_or_offset_out_of_range_is_422_not_500(api: ApiServer, path: str, token: str) -> None:
    with api.client("vera") as vera:
        answer = vera.get(path, params={"min_offset": token})
    assert names_min_offset(answer), answer.text


UNREACHABLE = [
    ("a topic that does not exist", "/v1/orders", "nosuchtopic:0:0"),
    ("a topic the read model does not read", "/v1/pnl", "orders:0:0"),
    ("a partition that does not exist", "/v1/orders", "orders:4000:0"),
    ("an offset past the log's end", "/v1/positions", "positions:0:999999999"),
]


@pytest.mark.parametrize(("why", "path", "token"), UNREACHABLE, ids=[u[0] for u in UNREACHABLE])
def test_an_unreachable_token_is_422_at_once_not_503_after_a_wait(
    api: ApiServer, why: str, path: str, token: str
) -> None:
    with api.client("vera") as vera:
        answer = vera.get(path, params={"min_offset": token})
    assert names_min_offset(answer), answer.text
    assert "Retry-After" not in answer.headers


def test_many_waits_by_one_user_are_bounded_and_do_not_slow_orders(api: ApiServer) -> None:
    with api.client("alice") as alice:
        placed = alice.post("/v1/orders", json=order("ACC-A1"))
    assert placed.status_code == 202, placed.text
    event = placed.json()["event"]
    # A real position in the log that no projector of this namespace will pass: every admitted wait runs its course.
    token = f"{event['topic'].removeprefix(api.topic_prefix)}:{event['partition']}:{event['offset']}"
    headers = {"Authorization": f"Bearer {api.token('vera')}"}

    def wait() -> httpx.Response:
        return httpx.get(f"{api.url}/v1/orders", params={"min_offset": token}, headers=headers, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        waits = [pool.submit(wait) for _ in range(40)]
        time.sleep(0.5)  # the waits are in
        with api.client("alice") as alice:
            started = time.monotonic()
            meanwhile = alice.post("/v1/orders", json=order("ACC-A1"))
            took = time.monotonic() - started
        answers = [w.result() for w in waits]
    assert meanwhile.status_code == 202, meanwhile.text
    assert took < 2, f"an order took {took:.2f} s while one viewer waited on 40 reads"
    statuses = sorted(a.status_code for a in answers)
    refused = [a for a in answers if a.status_code == 429]
    assert refused and set(statuses) <= {429, 503}, statuses
    assert all(a.headers["content-type"] == "application/problem+json" and "Retry-After" in a.headers for a in refused)
