"""`tradecore ingest ccxt`, composed: an exchange poller whose batches go through the command gateway.

Ticks from an exchange take the same path as ``POST /v1/ticks``: ``CommandGateway.ingest_ticks`` (validation,
per-instrument sequences from the write side's Postgres counters, the idempotent ``acks=all`` producer), so ticks
from the API and from exchanges share one gap-free numbering per instrument.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.wiring import write_side
from commands.decide import Stamp
from commands.models import IngestTicks
from domain.instruments import InstrumentRegistry
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams.exchanges import Backoff, ExchangeSettings, connect_async
from streams.ingest.exchange import ExchangeIngest, IngestStats, correlation_id
from streams.settings import KafkaSettings


async def ingest_from_exchange(
    exchange_id: str,
    symbols: Sequence[str],
    *,
    options: dict[str, Any],
    instruments_file: Path,
    interval_s: float,
    trades: bool,
    max_events: int | None,
    stop: asyncio.Event,
    on_progress: Callable[[IngestStats], None],
    exchange: ExchangeSettings | None = None,
    kafka: KafkaSettings | None = None,
    registry: RegistrySettings | None = None,
    database: DatabaseSettings | None = None,
    backoff: Backoff | None = None,
) -> IngestStats:
    """Poll until ``stop`` or ``max_events``; every batch is acknowledged by Kafka before the next poll."""
    kafka = kafka or KafkaSettings()
    instruments = InstrumentRegistry.from_file(instruments_file)
    correlation = correlation_id()
    async with write_side(kafka, registry or RegistrySettings(), database or DatabaseSettings(), instruments) as parts:
        venue = connect_async(exchange_id, exchange or ExchangeSettings(), options)

        async def append(batch: IngestTicks) -> int:
            return len(await parts.gateway.ingest_ticks(batch, Stamp(datetime.now(UTC), correlation)))

        try:
            poller = ExchangeIngest(
                venue,
                symbols,
                instruments,
                append,
                interval_s=interval_s,
                trades=trades,
                max_events=max_events,
                backoff=backoff,
                on_progress=on_progress,
            )
            return await poller.run(stop)
        finally:
            await venue.close()
