"""`tradecore topics delete --prefix P`: a namespace's topics, registry subjects and read-model schema go; another
namespace stays; prefixes naming more than a namespace are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from api import db as write_side
from deploy.local.stack import Endpoints
from projections import namespace
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.settings import KafkaSettings
from tests.support.stack import drop_namespace

pytestmark = pytest.mark.integration

TRADECORE = str(Path(sys.executable).with_name("tradecore"))


def _tradecore(endpoints: Endpoints, *args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRADECORE, "topics", "delete", *args],
        env={**os.environ, **endpoints.as_env()},
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _create(endpoints: Endpoints, db: Engine, prefix: str) -> None:
    """A namespace as a run leaves it: the design's topics, its events' subjects, its read-model schema, a row of
    the write side."""
    admin = kafka.admin(KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap))
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), 1), prefix)
    register_all(registry_client(RegistrySettings(url=endpoints.schema_registry_url)), prefix)
    namespace.upgrade(db, namespace.live_schema(prefix))
    write_side.upgrade(endpoints.database_url)
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO command_side.stream_sequences (namespace, topic, aggregate_id, last_sequence) "
                "VALUES (:ns, 'ticks', 'BTCUSDT', 7)"
            ),
            {"ns": prefix},
        )


def _contents(endpoints: Endpoints, db: Engine, prefix: str) -> tuple[list[str], list[str], list[str], int]:
    admin = kafka.admin(KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap))
    topics = sorted(t for t in admin.list_topics(timeout=30).topics if t.startswith(prefix))
    subjects = registry_client(RegistrySettings(url=endpoints.schema_registry_url)).subjects(prefix)
    with db.connect() as conn:
        schemas = namespace.namespace_schemas(conn, prefix)
        rows = conn.execute(
            text("SELECT count(*) FROM command_side.stream_sequences WHERE namespace = :ns"), {"ns": prefix}
        ).scalar_one()
    return topics, subjects, schemas, rows


@pytest.fixture
def two_namespaces(endpoints: Endpoints, db: Engine) -> Iterator[tuple[str, str]]:
    doomed, kept = (f"del-{uuid.uuid4().hex[:8]}." for _ in range(2))
    for prefix in (doomed, kept):
        _create(endpoints, db, prefix)
    yield doomed, kept
    for prefix in (doomed, kept):
        drop_namespace(endpoints.kafka_bootstrap, prefix)
        client = registry_client(RegistrySettings(url=endpoints.schema_registry_url))
        client.delete_subjects(client.subjects(prefix))
        with db.begin() as conn:
            for schema in namespace.namespace_schemas(conn, prefix):
                namespace.drop(conn, schema)
            conn.execute(text("DELETE FROM command_side.stream_sequences WHERE namespace = :ns"), {"ns": prefix})


def test_delete_removes_the_namespaces_topics_subjects_schema_and_rows_and_nothing_else(
    endpoints: Endpoints, db: Engine, two_namespaces: tuple[str, str]
) -> None:
    doomed, kept = two_namespaces
    before = _contents(endpoints, db, doomed)
    assert all(before), before  # topics, subjects, a schema and a row to delete

    done = _tradecore(endpoints, "--prefix", doomed, "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    for name in (*before[0], *before[1], *before[2]):
        assert name in done.stdout  # listed before it went
    assert "1 write-side rows" in done.stdout
    assert _contents(endpoints, db, doomed) == ([], [], [], 0)
    topics, subjects, schemas, rows = _contents(endpoints, db, kept)
    assert len(topics) == len(before[0]) and len(subjects) == len(before[1])
    assert schemas == [namespace.live_schema(kept)] and rows == 1


def test_delete_asks_first_and_a_no_deletes_nothing(
    endpoints: Endpoints, db: Engine, two_namespaces: tuple[str, str]
) -> None:
    doomed, _ = two_namespaces
    before = _contents(endpoints, db, doomed)

    done = _tradecore(endpoints, "--prefix", doomed, answer="n\n")

    assert done.returncode == 1
    assert "nothing deleted" in done.stderr
    assert _contents(endpoints, db, doomed) == before


@pytest.mark.parametrize(
    ("prefix", "says"),
    [("", "refusing the empty namespace"), ("_", "matches topics outside any namespace: __consumer_offsets")],
)
def test_a_prefix_naming_more_than_a_namespace_is_refused(
    endpoints: Endpoints, db: Engine, two_namespaces: tuple[str, str], prefix: str, says: str
) -> None:
    doomed, kept = two_namespaces
    before = [_contents(endpoints, db, p) for p in (doomed, kept)]

    done = _tradecore(endpoints, "--prefix", prefix, "--yes")

    assert done.returncode == 1
    assert says in done.stderr, done.stderr
    assert [_contents(endpoints, db, p) for p in (doomed, kept)] == before


def test_a_namespace_is_surveyed_and_deleted_where_the_write_side_was_never_migrated(
    endpoints: Endpoints, db: Engine
) -> None:
    from sqlalchemy.engine import make_url

    from api import namespaces
    from projections.settings import DatabaseSettings

    name = f"unmigrated_{uuid.uuid4().hex[:8]}"
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = make_url(endpoints.database_url).set(database=name).render_as_string(hide_password=False)
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    where = (
        KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap),
        RegistrySettings(url=endpoints.schema_registry_url),
        DatabaseSettings(url=fresh),
    )
    try:
        admin = kafka.admin(where[0])
        ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), 1), prefix)

        holdings = namespaces.survey(prefix, *where)
        assert holdings.write_rows == 0 and holdings.topics
        namespaces.delete_all(holdings, *where)

        assert not namespaces.survey(prefix, *where).topics
    finally:
        drop_namespace(endpoints.kafka_bootstrap, prefix)
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
