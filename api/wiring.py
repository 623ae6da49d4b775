"""The write side's parts, built once for whoever appends commands: the API's lifespan, `tradecore ingest`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from api import db
from api.order_metrics import order_commit_step, order_committed
from api.store import PostgresCommandStore, command_pool
from commands.gateway import CommandGateway
from domain.instruments import InstrumentRegistry
from projections.settings import DatabaseSettings
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams.eventlog import KafkaEventLog
from streams.kafka import KafkaSettings
from streams.kafka.registry import ConfluentRegistry, registry_client


@dataclass(frozen=True)
class WriteSide:
    gateway: CommandGateway
    engine: AsyncEngine
    registry: ConfluentRegistry


@asynccontextmanager
async def write_side(
    kafka: KafkaSettings,
    registry: RegistrySettings,
    database: DatabaseSettings,
    instruments: InstrumentRegistry,
    *,
    tick_max_ahead: timedelta = timedelta(seconds=5),
    placements_in_flight: int = 1,
    loads: bool = False,
) -> AsyncIterator[WriteSide]:
    """The command gateway over Kafka and the write-side tables; flushes and closes both on exit. ``loads``: the
    caller loads files of ticks (``CommandGateway.tick_load``)."""
    db.check_current(database.url)
    client = registry_client(registry)
    register_all(client, kafka.topic_prefix)
    engine = db.async_engine(database.url, connection_wait_s=database.connection_wait_s)
    # A command waits for its ack: linger 1 ms instead of 5. Commands still travel in batches — the gateway
    # group-commits placements and appends each tick batch at once.
    log = KafkaEventLog(kafka, client, loads=loads, **{"linger.ms": 1})
    try:
        async with command_pool(database) as pool:
            yield WriteSide(
                CommandGateway(
                    log,
                    PostgresCommandStore(pool, kafka.topic_prefix),
                    instruments,
                    placements_in_flight=placements_in_flight,
                    tick_max_ahead=tick_max_ahead,
                    placement_committed=order_committed,
                    placement_step=order_commit_step,
                ),
                engine,
                client,
            )
    finally:
        log.close()
        await engine.dispose()
