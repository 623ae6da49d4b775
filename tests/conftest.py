from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from deploy.local.stack import Endpoints
from projections.db import engine
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.settings import KafkaSettings
from tests.support.stack import drop_namespace, real_stack


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with real_stack() as found:
        yield found


@pytest.fixture
def kafka_settings(endpoints: Endpoints) -> Iterator[KafkaSettings]:
    """Settings with a topic namespace of this test's own, so tests never see each other's records; its topics
    are deleted afterwards."""
    settings = KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=f"test-{uuid.uuid4().hex[:10]}.")
    yield settings
    drop_namespace(endpoints.kafka_bootstrap, settings.topic_prefix)


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> KafkaSettings:
    """The design's topics, created in this test's namespace."""
    client = kafka.admin(kafka_settings)
    layout = TopicLayout.for_cluster(cluster_size(client), kafka_settings.partitions)
    ensure_topics(client, layout, kafka_settings.topic_prefix)
    return kafka_settings


@pytest.fixture
def registry_settings(endpoints: Endpoints) -> RegistrySettings:
    return RegistrySettings(url=endpoints.schema_registry_url)


@pytest.fixture(scope="session")
def db(endpoints: Endpoints) -> Iterator[Engine]:
    eng = engine(DatabaseSettings(url=endpoints.database_url))
    yield eng
    eng.dispose()
