"""Projection lag alerts: the read models' Postgres checkpoints against the topics' ends, past a rule's threshold,
at most once per min_interval_s."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from api.cli.alerts import lag_probe
from deploy.local.stack import Endpoints
from projections import namespace
from projections.settings import DatabaseSettings
from schemas.events import OrderFilled
from schemas.registry import registry_client
from schemas.settings import RegistrySettings
from streams.alerts import rules as rules_file
from streams.alerts.delivery import WebhookSender
from streams.alerts.service import AlertService
from streams.alerts.signing import verify
from streams.settings import KafkaSettings
from tests.streams.alerts.receiver import Receiver
from tests.streams.alerts.writing import Log, event_at
from tests.support.events import order_filled

pytestmark = pytest.mark.integration

SECRET = b"lag-test-secret-0123456"


def test_read_models_behind_the_log_past_the_threshold_alert_once_per_interval(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, db: Engine, tmp_path: Path
) -> None:
    Log(topics, registry_settings).write(*[event_at(order_filled, OrderFilled, i) for i in range(30)])
    schema = namespace.live_schema(topics.topic_prefix)
    namespace.upgrade(db, schema)
    receiver = Receiver()
    receiver.start()
    rules = rules_file.parse(
        f"""
[delivery]
lag_check_s = 0.3

[rules.lagging]
events = ["projection_lag"]
url = "{receiver.url()}"
lag_threshold = 10
min_interval_s = 3600
"""
    )
    stop = threading.Event()
    running: threading.Thread | None = None
    try:
        with db.begin() as conn:
            # The fills read model has folded every execution; the others that read executions have not.
            for partition in range(topics.partitions):
                conn.execute(
                    text(
                        f'INSERT INTO "{schema}".projection_checkpoints (projection, topic, partition, "offset", '
                        "updated_at) VALUES ('fills', 'executions', :p, 1000000, now())"
                    ),
                    {"p": partition},
                )
        probe = lag_probe(topics, DatabaseSettings(url=endpoints.database_url))
        sender = WebhookSender(SECRET, rules.delivery, stop)
        service = AlertService(
            topics, registry_client(registry_settings), rules, sender, group=f"{uuid.uuid4()}", lag_probe=probe
        )
        running = threading.Thread(target=service.run, args=(stop,))
        running.start()
        deadline = time.monotonic() + 60
        while not receiver.taken() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # several more measurements, all within the rule's interval
    finally:
        stop.set()
        if running is not None:
            running.join(30)
        receiver.stop()
        with db.begin() as conn:
            namespace.drop(conn, schema)

    (request,) = receiver.requests
    alert = json.loads(request.body)
    assert alert["kind"] == "projection_lag" and alert["rule"] == "lagging" and alert["id"] == request.key
    assert alert["detail"] == {"behind_records": {"order_events": 30, "orders": 30}, "threshold_records": 10}
    assert verify(SECRET, request.signature, request.body, now=time.time())
