"""One order, one trace: from the HTTP command through risk, the venue, the repartition and positions.

The API and the processors run in this process (the real app, real Kafka, real Postgres), so that every span lands
in one in-memory exporter.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api import db
from api.app import create_app
from api.auth import Role, add_user
from api.settings import ApiSettings
from deploy.local.stack import Endpoints
from projections import namespace
from projections.db import conninfo, engine
from projections.projectors import select
from projections.runner import ProjectionRunner
from projections.settings import DatabaseSettings
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams.host.runner import ProcessorHost
from streams.kafka import tracing
from streams.kafka.registry import registry_client
from streams.processors import ProcessorSettings
from streams.settings import KafkaSettings
from streams.worker import PROCESSORS
from tests.support.quotes import first_quote, fresh_tick, limit_buy
from tests.support.spans import recorded

pytestmark = pytest.mark.integration

JOURNEY = ("risk", "execution", "executions-by-account", "positions")


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return recorded()


@pytest.fixture
def processors(topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints) -> Iterator[None]:
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    stop = threading.Event()
    hosts = [ProcessorHost(PROCESSORS[name](ProcessorSettings()), topics, client) for name in JOURNEY]
    # The projector too: the journey ends in the read models.
    database = DatabaseSettings(url=endpoints.database_url)
    schema = namespace.live_schema(topics.topic_prefix)
    migrations = engine(database)
    namespace.upgrade(migrations, schema)
    migrations.dispose()
    projector = ProjectionRunner(select(None), topics, client, conninfo(database), schema)
    runs = [*(h.run for h in hosts), projector.run]
    threads = [threading.Thread(target=run, args=(stop,)) for run in runs]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    for thread in threads:
        thread.join(60)
    projector.close()


def test_a_placed_order_is_one_trace_from_the_api_through_every_processor(
    spans: InMemorySpanExporter,
    processors: None,
    topics: KafkaSettings,
    endpoints: Endpoints,
    registry_settings: RegistrySettings,
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.toml"
    add_user(users, "alice", "pw", [Role.TRADER], ["ACC-T1"])
    add_user(users, "adam", "pw", [Role.ADMIN], [])
    db.upgrade(endpoints.database_url)
    settings = ApiSettings(jwt_secret="x" * 32, users_file=users, order_wait_timeout_s=30)
    app = create_app(settings, topics, registry_settings, DatabaseSettings(url=endpoints.database_url))
    bid, ask = first_quote()
    with TestClient(app) as http:

        def bearer(user: str) -> dict[str, str]:
            answer = http.post("/v1/auth/token", data={"username": user, "password": "pw"})
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        assert http.post("/v1/ticks", json=fresh_tick(bid, ask), headers=bearer("adam")).status_code == 202
        placed = http.post(
            "/v1/orders", params={"wait": "ACCEPTED"}, headers=bearer("alice"), json=limit_buy("ACC-T1", ask + 10)
        )
    assert (placed.status_code, placed.json()["status"]) == (200, "ACCEPTED"), placed.json()

    [server] = [s for s in spans.get_finished_spans() if s.name == "POST /v1/orders"]
    assert server.kind == SpanKind.SERVER
    assert server.context is not None
    # Each hop is the child of the one that produced what it consumed.
    chain = [
        "POST /v1/orders",
        "risk process orders",
        "execution process orders.checked",
        "executions-by-account process executions",
        "positions process executions.by-account",
    ]
    projected = [
        ("project orders", "POST /v1/orders"),
        ("project orders.checked", "risk process orders"),
        ("project executions", "execution process orders.checked"),
        ("project positions", "positions process executions.by-account"),
    ]
    # The branches (the fill back in risk, each read model) end in no fixed order: wait for every hop.
    expected = {*chain, "risk process executions.by-account", *(child for child, _ in projected)}
    journey = _wait_for_trace(spans, server.context.trace_id, expected)
    by_name = {s.name: s for s in journey}
    assert set(chain) <= set(by_name), sorted(by_name)
    for parent, child in itertools.pairwise(chain):
        assert by_name[child].kind == SpanKind.CONSUMER
        assert by_name[child].parent is not None and by_name[parent].context is not None
        assert by_name[child].parent.span_id == by_name[parent].context.span_id, (parent, child)
    # The fill reaches risk too (exposure), in the same trace.
    assert "risk process executions.by-account" in by_name
    # And every read model it lands in: the order, the decision, the fill, the position.
    for child, parent in projected:
        assert child in by_name, sorted(by_name)
        assert by_name[child].parent is not None and by_name[parent].context is not None
        assert by_name[child].parent.span_id == by_name[parent].context.span_id, (parent, child)

    # Trace context travels in headers only: the position's payload is what a replay derives, byte for byte.
    [record] = _records(topics, "positions", 1)
    carried = tracing.extract(record.headers())
    assert trace.get_current_span(carried).get_span_context().trace_id == server.context.trace_id
    trace_id = format(server.context.trace_id, "032x").encode()
    assert b"traceparent" not in record.value() and trace_id not in record.value()


def _wait_for_trace(
    spans: InMemorySpanExporter, trace_id: int, last: set[str], timeout_s: float = 120
) -> list[ReadableSpan]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [s for s in spans.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]
        if last <= {s.name for s in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _records(settings: KafkaSettings, topic: str, wanted: int, timeout_s: float = 60) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"trace-{uuid.uuid4()}",
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(settings.topic_prefix + topic, p, 0) for p in range(settings.partitions)])
    found: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < wanted and time.monotonic() < deadline:
        found += [m for m in consumer.consume(100, 1.0) if m.error() is None]
    consumer.close()
    return found
