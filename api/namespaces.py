"""A topic namespace (``TRADECORE_TOPIC_PREFIX``) in the stack as a whole: what it holds, and its deletion.

Every demo, backtest with ``--keep`` and benchmark run leaves one behind: its topics, its events' registry subjects,
its read models' Postgres schemas and its write-side rows (``command_side``, keyed by namespace). Each part is found
and deleted by the helper of the package that owns it; this module only puts them together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Table, delete, func, inspect, select

from api import store
from projections import namespace
from projections.db import engine
from projections.settings import DatabaseSettings
from schemas.errors import TradecoreError
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.registry import registry_client
from streams.kafka.topics import delete_namespace, namespace_topics
from streams.settings import KafkaSettings

WRITE_SIDE = (store.orders, store.stream_sequences, store.idempotency_keys)
HINT = "run `tradecore stack up`, or set KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and DATABASE_URL"


class NamespaceError(TradecoreError):
    """A namespace could not be surveyed or deleted."""


@dataclass(frozen=True)
class Holdings:
    """What one namespace holds in the stack."""

    prefix: str
    topics: list[str]
    subjects: list[str]
    schemas: list[str]
    write_rows: int

    def empty(self) -> bool:
        return not (self.topics or self.subjects or self.schemas or self.write_rows)

    def lines(self) -> list[str]:
        """One line per thing held, as a user reviews them before agreeing to delete."""
        return [
            *(f"topic {name}" for name in self.topics),
            *(f"registry subject {name}" for name in self.subjects),
            *(f"Postgres schema {name}" for name in self.schemas),
            *([f"{self.write_rows} write-side rows (command_side)"] if self.write_rows else []),
        ]

    def counts(self) -> str:
        return (
            f"{len(self.topics)} topics, {len(self.subjects)} registry subjects, {len(self.schemas)} Postgres schemas "
            f"and {self.write_rows} write-side rows"
        )


@contextlib.contextmanager
def _talking_to(what: str) -> Iterator[None]:
    """A client library's own error (librdkafka, the registry client, the database driver) as a NamespaceError
    saying which component failed."""
    try:
        yield
    except TradecoreError:
        raise
    except Exception as err:
        raise NamespaceError(f"{what}: {type(err).__name__}: {err}", hint=HINT) from err


def survey(prefix: str, settings: KafkaSettings, registry: RegistrySettings, database: DatabaseSettings) -> Holdings:
    """What the namespace ``prefix`` holds; refuses what ``streams.kafka.topics.namespace_topics`` refuses (the empty
    prefix, or one matching topics outside any namespace)."""
    with _talking_to(f"Kafka at {settings.bootstrap_servers} did not answer"):
        topics = namespace_topics(kafka.admin(settings), prefix)
    with _talking_to(f"the schema registry at {registry.url} did not answer"):
        subjects = registry_client(registry).subjects(prefix)
    db = engine(database)
    try:
        with _talking_to("Postgres did not answer"), db.connect() as conn:
            schemas = namespace.namespace_schemas(conn, prefix)
            rows = sum(
                conn.execute(select(func.count()).select_from(t).where(t.c.namespace == prefix)).scalar_one()
                for t in _write_side(conn)
            )
    finally:
        db.dispose()
    return Holdings(prefix, topics, subjects, schemas, rows)


def delete_all(
    holdings: Holdings, settings: KafkaSettings, registry: RegistrySettings, database: DatabaseSettings
) -> None:
    """Delete what ``holdings`` lists: the topics, the subjects, the read-model schemas, the write-side rows."""
    with _talking_to("deleting the topics failed"):
        delete_namespace(kafka.admin(settings), holdings.prefix)
    with _talking_to("deleting the registry subjects failed"):
        registry_client(registry).delete_subjects(holdings.subjects)
    db = engine(database)
    try:
        with _talking_to("deleting the read models and write-side rows failed"), db.begin() as conn:
            for schema in holdings.schemas:
                namespace.drop(conn, schema)
            for table in _write_side(conn):
                conn.execute(delete(table).where(table.c.namespace == holdings.prefix))
    finally:
        db.dispose()


def _write_side(conn: Connection) -> list[Table]:
    """The write side's tables that exist: none before its migrations ran (a stack where no command was taken yet
    holds no rows to count or delete, and is no error)."""
    present = inspect(conn)
    return [table for table in WRITE_SIDE if present.has_table(table.name, schema=table.schema)]
