from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from deploy.local.stack import Endpoints
from projections import namespace
from projections.db import conninfo
from projections.settings import DatabaseSettings
from projections.tables import metadata
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.settings import KafkaSettings
from tests.projections.folds import Log
from tests.support.independent import IndependentReader
from tests.support.market_log import session
from tests.support.pipeline import produce, run_pipeline, with_limits

ORDERS = 1500


@dataclass
class Pipeline:
    """A namespace whose topics hold a whole pipeline's events, and its read models' schema."""

    endpoints: Endpoints
    kafka: KafkaSettings
    registry: RegistrySettings
    conninfo: str
    log: Log

    @property
    def prefix(self) -> str:
        return self.kafka.topic_prefix

    @property
    def schema(self) -> str:
        return namespace.live_schema(self.prefix)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True, options="-c timezone=UTC")

    def rows(self, table: str, schema: str | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
        """A read model's rows by primary key."""
        pk = [c.name for c in metadata.tables[table].primary_key.columns]
        with self.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema or self.schema, table)))
            return {tuple(r[c] for c in pk): r for r in cur}

    def rows_or_none(self, table: str) -> dict[tuple[Any, ...], dict[str, Any]] | None:
        """The rows, or None while the read model does not exist yet."""
        try:
            return self.rows(table)
        except psycopg.errors.UndefinedTable:
            return None

    def caught_up(self) -> bool:
        """Every projection's checkpoint has passed every record of the topics it reads."""
        from projections.projectors import PROJECTORS

        try:
            with self.connect() as conn:
                found = {
                    (p, t, part): o
                    for p, t, part, o in conn.execute(
                        sql.SQL('SELECT projection, topic, partition, "offset" FROM {}').format(
                            sql.Identifier(self.schema, "projection_checkpoints")
                        )
                    )
                }
        except psycopg.errors.UndefinedTable:
            return False
        return all(
            found.get((name, t, p), 0) >= needed
            for name, cls in PROJECTORS.items()
            for (t, p), needed in self.log.needed().items()
            if t in cls.topics
        )

    def wait_caught_up(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.caught_up():
            assert time.monotonic() < deadline, "the projections did not catch up"
            time.sleep(0.5)

    def on(self, database_url: str) -> Pipeline:
        """The same log, its read models in another database."""
        return dataclasses.replace(self, conninfo=conninfo(DatabaseSettings(url=database_url)))

    def drop_read_models(self) -> None:
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))


@pytest.fixture(scope="session")
def pipeline(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    settings = KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=f"rm-{uuid.uuid4().hex[:8]}.")
    client = kafka.admin(settings)
    ensure_topics(client, TopicLayout.for_cluster(cluster_size(client), settings.partitions), settings.topic_prefix)
    registry = RegistrySettings(url=endpoints.schema_registry_url)
    produce(settings, registry, with_limits(session(ORDERS)))
    run_pipeline(endpoints, settings, registry, tmp_path_factory.mktemp("pipeline"))
    reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
    try:
        log = Log(reader, settings.topic_prefix)
    finally:
        reader.close()
    return Pipeline(endpoints, settings, registry, conninfo(DatabaseSettings(url=endpoints.database_url)), log)


@pytest.fixture
def fresh(pipeline: Pipeline) -> Iterator[Pipeline]:
    """The pipeline with no read models yet; dropped again afterwards."""
    pipeline.drop_read_models()
    yield pipeline
    pipeline.drop_read_models()
