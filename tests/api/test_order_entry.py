"""`POST /v1/orders` answered in front of Starlette's middleware and router (api/order_entry.py) answers as the
framework does: the same statuses, bodies and headers for a valid order, a repeat, a bad or missing token, a caller
without the role or the account, a reused Idempotency-Key or client_order_id, and a body over the limit; the same
request metrics under the route template; the same SERVER span, continuing the caller's ``traceparent`` into the
appended event's Kafka headers.

A body streamed without Content-Length is passed on to the framework, which answers it through FastAPI: the two paths
are compared on the same app (the real app in this process, against the real stack).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from confluent_kafka import Consumer, TopicPartition
from fastapi import Response
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api import db
from api.app import create_app
from api.auth import Role, add_user
from api.place_route import Placer
from api.settings import ApiSettings
from deploy.local.stack import Endpoints
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams.kafka import tracing
from streams.settings import KafkaSettings
from tests.api.conftest import order
from tests.support.spans import recorded

pytestmark = pytest.mark.integration

BODY_MAX = 4096


@pytest.fixture
def http(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> Iterator[TestClient]:
    users = tmp_path / "users.toml"
    add_user(users, "alice", "pw", [Role.TRADER], ["ACC-T1", "ACC-T2"])
    add_user(users, "vera", "pw", [Role.VIEWER], ["ACC-T1"])
    db.upgrade(endpoints.database_url)
    settings = ApiSettings(jwt_secret="x" * 32, users_file=users, command_body_max_bytes=BODY_MAX)
    app = create_app(settings, topics, registry_settings, DatabaseSettings(url=endpoints.database_url))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def floor(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The client_order_ids the front answered itself."""
    answered: list[str] = []
    place: Callable[..., Awaitable[Response]] = Placer.__call__

    async def spied(self: Placer, *args: Any) -> Response:
        answered.append(args[1].command.client_order_id)
        return await place(self, *args)

    monkeypatch.setattr(Placer, "__call__", spied)
    return answered


def bearer(http: TestClient, user: str) -> dict[str, str]:
    answer = http.post("/v1/auth/token", data={"username": user, "password": "pw"})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def post(
    http: TestClient, body: dict[str, object] | bytes, headers: dict[str, str], *, streamed: bool
) -> httpx2.Response:
    """POST /v1/orders with a Content-Length (the front's), or streamed without one (the framework's)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    content: bytes | Iterator[bytes] = iter([data]) if streamed else data
    return http.post("/v1/orders", content=content, headers={"Content-Type": "application/json", **headers})


def seen(answer: httpx2.Response) -> tuple[int, str | None, str | None, str | None, Any]:
    """What a client sees of an answer: status, the headers that matter, the body."""
    h = answer.headers
    return answer.status_code, h.get("content-type"), h.get("www-authenticate"), h.get("location"), answer.json()


def counted(http: TestClient) -> dict[str, float]:
    """tradecore_http_requests_total for POST /v1/orders, by status."""
    text = http.get("/metrics").text
    pattern = r'tradecore_http_requests_total\{method="POST",route="/v1/orders",status="(\d+)"\} (\S+)'
    return {status: float(value) for status, value in re.findall(pattern, text)}


def test_the_front_and_the_framework_answer_alike(http: TestClient, floor: list[str]) -> None:
    alice, vera = bearer(http, "alice"), bearer(http, "vera")
    before = counted(http)
    answers: dict[str, list[httpx2.Response]] = {}
    for streamed in (False, True):
        first = order("ACC-T1")
        key = f"k-{uuid.uuid4().hex[:8]}"
        cases = {
            "placed": (first, alice),
            "repeat": (first, alice),
            "bad token": (order("ACC-T1"), {"Authorization": "Bearer nope"}),
            "no token": (order("ACC-T1"), {}),
            "not a trader": (order("ACC-T1"), vera),
            "not the caller's account": (order("ACC-B1"), alice),
            "client_order_id reused": ({**first, "quantity": "0.5"}, alice),
            "keyed": (order("ACC-T1"), {**alice, "Idempotency-Key": key}),
            "key reused": (order("ACC-T1"), {**alice, "Idempotency-Key": key}),
            "too large": (order("ACC-T1", client_order_id="x" * BODY_MAX), alice),
        }
        for case, (body, headers) in cases.items():
            answers.setdefault(case, []).append(post(http, body, headers, streamed=streamed))
    front, framework = ({case: pair[i] for case, pair in answers.items()} for i in (0, 1))

    assert front["placed"].status_code == 202, front["placed"].text
    assert front["placed"].headers["location"] == f"/v1/orders/{front['placed'].json()['order_id']}"
    assert seen(front["repeat"]) == seen(front["placed"])
    assert seen(framework["repeat"]) == seen(framework["placed"])
    for case in ("placed", "keyed"):  # a new order each: the same answer but for its id and where it landed
        mine, theirs = front[case].json(), framework[case].json()
        assert (front[case].status_code, set(mine), mine["status"]) == (202, set(theirs), theirs["status"])
    expected = {
        "bad token": 401,
        "no token": 401,
        "not a trader": 403,
        "not the caller's account": 403,
        "client_order_id reused": 409,
        "key reused": 422,
        "too large": 413,
    }
    for case, status in expected.items():
        mine, theirs = seen(front[case]), seen(framework[case])
        # The words name the order, the key or the account of each path's request; all else is the same.
        assert mine[:4] == theirs[:4] == (status, "application/problem+json", mine[2], None), case
        assert set(mine[4]) == set(theirs[4]) and mine[4]["title"] == theirs[4]["title"], case
    assert seen(front["bad token"]) == seen(framework["bad token"])
    assert seen(front["too large"]) == seen(framework["too large"])
    assert front["bad token"].headers["www-authenticate"] == "Bearer"

    # The front answered each plain request of its own (the too-large body it left to the framework), none streamed.
    ours = [json.loads(a.request.content)["client_order_id"] for case, a in front.items() if case != "too large"]
    assert sorted(floor) == sorted(ours)
    # Counted alike, under the route template. (Not the 413s: BodyLimit refuses a declared length before the router
    # has matched, and counts it as "unmatched", as it did before the front.)
    after = counted(http)
    statuses = [str(a.status_code) for case, pair in answers.items() if case != "too large" for a in pair]
    grown = {s: grew for s in after if s != "413" and (grew := after[s] - before.get(s, 0))}
    assert grown == {s: statuses.count(s) for s in statuses}


def commits(http: TestClient) -> dict[str, float]:
    """The group commits of placements /metrics counts: commits, orders in them, and the commits timed."""
    text = http.get("/metrics").text
    found = dict(re.findall(r"^(tradecore_order_commit_\w+_(?:count|sum)) (\S+)$", text, re.MULTILINE))
    return {name: float(value) for name, value in found.items()}


def test_each_group_commit_of_orders_is_counted_with_its_orders_and_time(http: TestClient) -> None:
    """What an operator tunes TRADECORE_PLACEMENTS_IN_FLIGHT by: orders per commit, and how long one takes."""
    alice = bearer(http, "alice")
    before = commits(http)
    first = order("ACC-T1")
    for body in (first, order("ACC-T2"), order("ACC-T1"), first):  # the last a repeat, answered by a commit too
        assert post(http, body, alice, streamed=False).status_code in (200, 202)
    after = commits(http)
    grown = {name: after[name] - before.get(name, 0.0) for name in after}
    assert grown["tradecore_order_commit_orders_count"] == 4  # one by one, each its own commit
    assert grown["tradecore_order_commit_orders_sum"] == 4
    assert grown["tradecore_order_commit_duration_seconds_count"] == 4
    assert 0 < grown["tradecore_order_commit_duration_seconds_sum"] < 4 * 5


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return recorded()


def test_the_front_continues_the_callers_trace_into_the_events_headers(
    spans: InMemorySpanExporter, http: TestClient, floor: list[str], topics: KafkaSettings
) -> None:
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    body = order("ACC-T1")
    placed = post(http, body, {**bearer(http, "alice"), "traceparent": traceparent}, streamed=False)
    assert placed.status_code == 202, placed.text
    assert floor == [body["client_order_id"]]

    [server] = [
        s for s in spans.get_finished_spans() if s.context is not None and s.context.trace_id == int(trace_id, 16)
    ]
    assert (server.name, server.kind) == ("POST /v1/orders", SpanKind.SERVER)
    assert server.attributes is not None and server.context is not None
    assert (server.attributes["http.route"], server.attributes["http.response.status_code"]) == ("/v1/orders", 202)

    event = placed.json()["event"]
    consumer = Consumer({"bootstrap.servers": topics.bootstrap_servers, "group.id": f"oe-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(event["topic"], event["partition"], event["offset"])])
    try:
        record = consumer.poll(30)
    finally:
        consumer.close()
    assert record is not None and record.error() is None
    carried = trace.get_current_span(tracing.extract(record.headers())).get_span_context()
    assert (carried.trace_id, carried.span_id) == (server.context.trace_id, server.context.span_id)
