"""A record the runner cannot decode goes to `deadletter` with the reason; the valid ones around it are projected."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from deploy.local.stack import Endpoints
from projections import namespace
from projections.db import conninfo
from projections.settings import DatabaseSettings
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.test_deadletter import records
from tests.support.events import order_filled, tick_ingested
from tests.support.pipeline import start_projector
from tests.support.workers import stop

pytestmark = pytest.mark.integration


def test_undecodable_records_are_dead_lettered_with_the_reason_and_the_rest_is_projected(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    register_all(client, prefix)
    executions = EventSerializer(client, "executions", topic_prefix=prefix)
    ticks = EventSerializer(client, "ticks", topic_prefix=prefix)
    producer = kafka.producer(topics)
    good = order_filled(fill_id="fill-after-poison")
    producer.produce(executions.topic, key=b"BTCUSDT", value=b"not avro at all")
    producer.produce(executions.topic, key=b"BTCUSDT", value=ticks.serialize(tick_ingested()))  # another topic's
    producer.produce(executions.topic, key=b"BTCUSDT", value=executions.serialize(good), timestamp=event_time_ms(good))
    assert producer.flush(30) == 0

    proc = start_projector(endpoints, prefix, tmp_path / "project.log", "fills")
    try:
        dead = records(topics, prefix + "deadletter", 2)
        schema = namespace.live_schema(prefix)
        with psycopg.connect(conninfo(DatabaseSettings(url=endpoints.database_url)), autocommit=True) as conn:
            for _ in range(120):
                try:
                    found = conn.execute(f'SELECT fill_id FROM "{schema}".fills').fetchall()
                except psycopg.errors.UndefinedTable:
                    found = []
                if found:
                    break
                time.sleep(0.5)
            assert found == [("fill-after-poison",)]
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        code = stop(proc, tmp_path / "project.log")
    assert code == 0
    reasons = sorted(dict(m.headers())["tradecore.reason"].decode() for m in dead)
    assert len(reasons) == 2 and all(r.startswith("undecodable: ") for r in reasons), reasons
    assert any("TickIngested" in r for r in reasons), "the reason names what the bytes were"
    assert {dict(m.headers())["tradecore.processor"] for m in dead} == {b"projections"}
    assert b"not avro at all" in {m.value() for m in dead}, "a dead letter keeps the record's bytes"
