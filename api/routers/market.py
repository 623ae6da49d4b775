"""Market data in (tick batches) and reference data out (instruments)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CommandStamp, CurrentPrincipal, MarketData, ServicesDep
from api.models import InstrumentOut, PartitionRange, TicksAck
from api.problems import documented
from commands.models import IngestTicks

router = APIRouter(prefix="/v1", tags=["market data"])


@router.post(
    "/ticks",
    status_code=202,
    response_model=TicksAck,
    responses=documented(
        400,
        401,
        (403, "Not an admin (market data comes from the feed's account)"),
        413,
        422,
        (429, "The caller is over its rate of tick batches; see Retry-After"),
        (503, "Kafka did not acknowledge; nothing was recorded, retry"),
    ),
    summary="Ingest a batch of ticks",
)
async def ingest_ticks(
    command: IngestTicks, principal: MarketData, services: ServicesDep, stamp: CommandStamp
) -> dict[str, Any]:
    """Append one TickIngested per tick to `ticks` (keyed by instrument), the whole batch in one go."""
    services.ticks_limiter.hit(principal.name)
    appended = await services.gateway.ingest_ticks(command, stamp)
    ranges: dict[tuple[str, int], list[int]] = {}
    for a in appended:
        ranges.setdefault((a.topic, a.partition), []).append(a.offset)
    return TicksAck(
        accepted=len(appended),
        ranges=[
            PartitionRange(topic=t, partition=p, first_offset=min(o), last_offset=max(o), count=len(o))
            for (t, p), o in sorted(ranges.items())
        ],
    ).model_dump()


@router.get(
    "/instruments", response_model=list[InstrumentOut], responses=documented(401), summary="Tradable instruments"
)
async def instruments(principal: CurrentPrincipal, services: ServicesDep) -> list[dict[str, Any]]:
    """The instrument registry: symbols, venues, tick and lot sizes, quantity bounds."""
    return [
        {
            "symbol": i.symbol,
            "venue": i.venue,
            "base": i.base,
            "quote": i.quote,
            "tick_size": str(i.tick_size),
            "lot_size": str(i.lot_size),
            "min_quantity": str(i.min_quantity),
            "max_quantity": str(i.max_quantity),
            "tradable": i.tradable,
        }
        for i in services.instruments.values()
    ]
