"""The real components the integration tests run against: Docker containers when an engine answers,
otherwise the project's local stack (the same one `make test` brings up)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from deploy.local.stack import Endpoints, LocalStack


def docker_engine_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def containers() -> Iterator[Endpoints]:
    """Kafka (KRaft), Postgres and Apicurio Registry in containers, as docker-compose.yml runs them."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer("apache/kafka:4.1.2").with_kraft() as kafka,
        PostgresContainer("postgres:16", dbname="tradecore", driver="psycopg") as pg,
    ):
        registry = (
            DockerContainer("apicurio/apicurio-registry:3.3.3")
            .with_env("APICURIO_STORAGE_KIND", "kafkasql")
            .with_env("APICURIO_KAFKASQL_BOOTSTRAP_SERVERS", kafka.get_bootstrap_server())
            .with_kwargs(network_mode="host")
        )
        with registry:
            wait_for_logs(registry, "Listening on", timeout=180)
            yield Endpoints(
                kafka.get_bootstrap_server(), pg.get_connection_url(), "http://127.0.0.1:8080/apis/ccompat/v7"
            )


@contextlib.contextmanager
def real_stack() -> Iterator[Endpoints]:
    if docker_engine_reachable():
        with containers() as endpoints:
            yield endpoints
    else:
        # Left running afterwards, like `make test` leaves it: the next run starts warm.
        yield LocalStack().up(report=lambda _line: None)


def drop_namespace(bootstrap: str, prefix: str) -> None:
    """Delete a test's topics afterwards: leftover test namespaces by the thousand exhaust the broker's files."""
    from confluent_kafka.admin import AdminClient

    from streams.kafka.topics import delete_namespace

    delete_namespace(AdminClient({"bootstrap.servers": bootstrap}), prefix)


def namespace_exists(bootstrap: str, prefix: str) -> bool:
    """Whether any topic of the namespace is there."""
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    return any(name.startswith(prefix) for name in topics)
