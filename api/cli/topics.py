"""`tradecore topics`: the Kafka topics of the design, and whole namespaces of them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.table import Table

from api.cli.reporting import Commands, console, fail
from schemas.errors import TradecoreError

app = Commands(help="The Kafka topics of the design, and the namespaces (TRADECORE_TOPIC_PREFIX) holding them.")


@contextlib.contextmanager
def talking_to(what: str, hint: str) -> Iterator[None]:
    """A client library's own error (librdkafka, the registry client, the database driver) as one line saying which
    component failed and what to do, rather than a traceback."""
    try:
        yield
    except TradecoreError:
        raise
    except Exception as err:
        raise fail(f"{what}: {type(err).__name__}: {err}", hint) from err


STACK_HINT = "run `tradecore stack up`, or set KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and DATABASE_URL"


@app.command("ensure")
def topics_ensure(
    prefix: Annotated[str | None, typer.Option(help="Topic namespace (default: TRADECORE_TOPIC_PREFIX).")] = None,
) -> None:
    """Create the design's topics, or align an existing topic's config; refuses partition/RF changes."""
    from streams import kafka
    from streams.settings import KafkaSettings
    from streams.topics import TopicLayout, cluster_size, ensure_topics

    settings = KafkaSettings()
    with talking_to(
        f"Kafka at {settings.bootstrap_servers} did not answer",
        "run `tradecore stack up`, or set KAFKA_BOOTSTRAP_SERVERS",
    ):
        client = kafka.admin(settings)
        layout = TopicLayout.for_cluster(cluster_size(client), settings.partitions)
        outcomes = ensure_topics(client, layout, settings.topic_prefix if prefix is None else prefix)
    table = Table("topic", "action", "detail")
    for outcome in outcomes:
        table.add_row(outcome.topic, outcome.action, outcome.detail)
    console.print(table)
    console.print(
        f"layout: {layout.partitions} partitions, RF {layout.replication_factor}, "
        f"min.insync.replicas {layout.min_insync_replicas}, retention.ms -1"
    )


@app.command("delete")
def topics_delete(
    prefix: Annotated[
        str, typer.Option(help="The namespace: its whole topic prefix, as TRADECORE_TOPIC_PREFIX gave it (demo-….).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a namespace: its topics, its schema-registry subjects and its read models' Postgres schemas. Lists them
    and asks first (unless --yes); refuses the empty prefix and one matching topics outside any namespace."""
    from projections import namespace
    from projections.db import engine
    from projections.settings import DatabaseSettings
    from schemas.registry import delete_subjects, namespace_subjects, registry_client
    from schemas.settings import RegistrySettings
    from streams import kafka
    from streams.settings import KafkaSettings
    from streams.topics import delete_namespace, namespace_topics

    settings, registry, database = KafkaSettings(), RegistrySettings(), DatabaseSettings()
    with talking_to(f"Kafka at {settings.bootstrap_servers} did not answer", STACK_HINT):
        admin = kafka.admin(settings)
        topics = namespace_topics(admin, prefix)
    with talking_to(f"the schema registry at {registry.url} did not answer", STACK_HINT):
        client = registry_client(registry)
        subjects = namespace_subjects(client, prefix)
    db = engine(database)
    try:
        with talking_to("Postgres did not answer", STACK_HINT), db.connect() as conn:
            schemas = namespace.namespace_schemas(conn, prefix)
        if not (topics or subjects or schemas):
            console.print(f"namespace {prefix} has no topics, registry subjects or read models: nothing to delete")
            return
        # One line each, never a table a narrow terminal would cut: this is what the user agrees to delete.
        console.print(f"namespace {prefix} holds:", highlight=False)
        for kind, names in (("topic", topics), ("registry subject", subjects), ("Postgres schema", schemas)):
            for name in names:
                console.print(f"  {kind} {name}", highlight=False, markup=False)
        counts = f"{len(topics)} topics, {len(subjects)} registry subjects and {len(schemas)} Postgres schemas"
        if not yes and not typer.confirm(f"delete these {counts}?", default=False):
            raise fail("nothing deleted", "give --yes to delete without asking")
        with talking_to("deleting the topics failed", STACK_HINT):
            delete_namespace(admin, prefix)
        with talking_to("deleting the registry subjects failed", STACK_HINT):
            delete_subjects(client, subjects)
        with talking_to("dropping the read models' schemas failed", STACK_HINT), db.begin() as conn:
            for schema in schemas:
                namespace.drop(conn, schema)
    finally:
        db.dispose()
    console.print(f"deleted namespace {prefix}: {counts}", highlight=False)
