"""The stack fixtures, and the check that keeps the lanes honest: a test that reaches Kafka, Postgres or the
registry must carry the ``integration`` marker, so that ``make unit`` (``-m "not integration"``) needs no stack."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from deploy.local import kafka as local_kafka
from deploy.local import postgres as local_postgres
from deploy.local import registry as local_registry
from deploy.local.stack import Endpoints
from projections.db import engine
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.settings import KafkaSettings
from tests.support.stack import drop_namespace, real_stack

# `make unit` passes --hypothesis-profile=unit: each property test runs a fifth of the examples it runs under the
# default profile (`make test`), through tests.support.properties.example_count.
settings.register_profile("unit", max_examples=20)

# A unit test sees these instead of the stack's addresses, so a client it builds, in process or in a subprocess,
# fails at once naming a host that says why, instead of quietly using a stack that `make unit` does not have.
NO_STACK_HOST = "no-stack-in-unit-tests.invalid"
NO_STACK_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": f"{NO_STACK_HOST}:9092",
    "DATABASE_URL": f"postgresql+psycopg://tradecore@{NO_STACK_HOST}/tradecore",
    "SCHEMA_REGISTRY_URL": f"http://{NO_STACK_HOST}/apis/ccompat/v7",
}
# What starts a stack component of a test's own (tests/deploy, a throwaway Postgres): refused in unit tests.
STACK_STARTERS = ((local_postgres, "start"), (local_kafka, "start"), (local_kafka, "libs"), (local_registry, "start"))


def is_integration(item: pytest.Item) -> bool:
    return item.get_closest_marker("integration") is not None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test asking for the stack (``endpoints`` and every fixture built on it: ``kafka_settings``, ``topics``,
    ``registry_settings``, ``db``, the API server, the workers) fails before it starts unless marked."""
    if "endpoints" in getattr(item, "fixturenames", ()) and not is_integration(item):
        pytest.fail(
            f"{item.nodeid} uses the stack (the `endpoints` fixture) without the integration marker: add "
            "@pytest.mark.integration (or `pytestmark = pytest.mark.integration` for the module)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def unit_tests_have_no_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a test not marked integration: stack addresses that cannot resolve, and no stack component started."""
    if is_integration(request.node):
        return
    for name, value in NO_STACK_ENV.items():
        monkeypatch.setenv(name, value)
        monkeypatch.setenv(f"TRADECORE_{name}", value)

    def refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
        pytest.fail(
            f"{request.node.nodeid} starts a stack component without the integration marker: add "
            "@pytest.mark.integration",
            pytrace=False,
        )

    for module, name in STACK_STARTERS:
        monkeypatch.setattr(module, name, refuse)


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
