"""`tradecore topics`: the Kafka topics of the design, and whole namespaces of them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli.reporting import Commands, console, fail, foreign_errors

app = Commands(help="The Kafka topics of the design, and the namespaces (TRADECORE_TOPIC_PREFIX) holding them.")


@app.command("ensure")
def topics_ensure(
    prefix: Annotated[str | None, typer.Option(help="Topic namespace (default: TRADECORE_TOPIC_PREFIX).")] = None,
) -> None:
    """Create the design's topics, or align an existing topic's config; refuses partition/RF changes."""
    from deploy.local.kafka import brokers_up
    from streams import kafka
    from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
    from streams.settings import KafkaSettings

    settings = KafkaSettings()
    unreachable = f"Kafka at {settings.bootstrap_servers} did not answer"
    what_to_do = "run `tradecore stack up`, or set KAFKA_BOOTSTRAP_SERVERS"
    # Nothing listening at the address is said at once, not after librdkafka's 10 s of retries.
    if not brokers_up(settings.bootstrap_servers):
        raise fail(unreachable, what_to_do)
    client = kafka.admin(settings)
    # librdkafka reports a cluster that stops answering as a KafkaException
    with foreign_errors(unreachable, what_to_do):
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
    """Delete a namespace: its topics, its schema-registry subjects, its read models' Postgres schemas and its
    write-side rows. Lists them and asks first (unless --yes); refuses the empty prefix and one matching topics
    outside any namespace."""
    from api import namespaces
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams.settings import KafkaSettings

    where = KafkaSettings(), RegistrySettings(), DatabaseSettings()
    holdings = namespaces.survey(prefix, *where)
    if holdings.empty():
        console.print(f"namespace {prefix} holds nothing in this stack: nothing to delete", highlight=False)
        return
    # One line each, never a table a narrow terminal would cut: this is what the user agrees to delete.
    console.print(f"namespace {prefix} holds:", highlight=False)
    for line in holdings.lines():
        console.print(f"  {line}", highlight=False, markup=False)
    if not yes and not typer.confirm(f"delete these {holdings.counts()}?", default=False):
        raise fail("nothing deleted", "give --yes to delete without asking")
    namespaces.delete_all(holdings, *where)
    console.print(f"deleted namespace {prefix}: {holdings.counts()}", highlight=False)
