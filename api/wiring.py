"""The write side's parts, built once for whoever appends commands: the API's lifespan, `tradecore ingest`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from confluent_kafka.schema_registry import SchemaRegistryClient
from sqlalchemy.ext.asyncio import AsyncEngine

from api import db
from api.store import PostgresCommandStore
from commands.gateway import CommandGateway
from domain.instruments import InstrumentRegistry
from projections.settings import DatabaseSettings
from schemas.registry import registry_client
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams.eventlog import KafkaEventLog
from streams.settings import KafkaSettings


@dataclass(frozen=True)
class WriteSide:
    gateway: CommandGateway
    engine: AsyncEngine
    registry: SchemaRegistryClient


@asynccontextmanager
async def write_side(
    kafka: KafkaSettings, registry: RegistrySettings, database: DatabaseSettings, instruments: InstrumentRegistry
) -> AsyncIterator[WriteSide]:
    """The command gateway over Kafka and the write-side tables; flushes and closes both on exit."""
    db.check_current(database.url)
    client = registry_client(registry)
    register_all(client, kafka.topic_prefix)
    engine = db.async_engine(database.url)
    # A command waits for its ack: linger 1 ms instead of 5. Commands still travel in batches — the gateway
    # group-commits placements and appends each tick batch at once.
    log = KafkaEventLog(kafka, client, **{"linger.ms": 1})
    try:
        yield WriteSide(
            CommandGateway(log, PostgresCommandStore(engine, kafka.topic_prefix), instruments), engine, client
        )
    finally:
        log.close()
        await engine.dispose()
