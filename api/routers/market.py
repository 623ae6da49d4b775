"""Market data in (tick batches) and reference data out (instruments)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request

from api import tick_bodies
from api.bodies import StrictJsonRoute
from api.deps import CommandStamp, CurrentPrincipal, MarketData, ServicesDep
from api.models import InstrumentOut, PartitionRange, TicksAck
from api.problems import documented
from commands.models import IngestTicks

router = APIRouter(prefix="/v1", tags=["market data"], route_class=StrictJsonRoute)
_COLUMNS = (
    "The ticks' fields as columns (instrument, venue, bid, ask, last, bid_size, ask_size, last_size, exchange_ts): "
    "decimals as strings or decimal columns, exchange_ts a time-zone-aware timestamp or ISO 8601 text; at most "
    "10,000 rows; the source in the `source` query parameter."
)
_BINARY = {"type": "string", "format": "binary"}
TICK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/IngestTicks"}},
            tick_bodies.ARROW: {"schema": {**_BINARY, "description": f"An Arrow IPC stream. {_COLUMNS}"}},
            tick_bodies.PARQUET: {"schema": {**_BINARY, "description": f"A Parquet file. {_COLUMNS}"}},
        },
    }
}


@router.post(
    "/ticks",
    status_code=202,
    response_model=TicksAck,
    responses=documented(
        400,
        401,
        (403, "Not an admin (market data comes from the feed's account)"),
        413,
        (415, "The Content-Type is none of JSON, Arrow IPC stream, Parquet"),
        422,
        (429, "The caller is over its rate of tick batches; see Retry-After"),
        (503, "Kafka did not confirm in time: the command may be in the log; retry the same request"),
    ),
    summary="Ingest a batch of ticks",
    openapi_extra=TICK_BODY,
)
async def ingest_ticks(
    request: Request,
    principal: MarketData,
    services: ServicesDep,
    stamp: CommandStamp,
    source: Annotated[
        str,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9._:\-]+$",
            description="Who produced the ticks (feed name), for an Arrow or Parquet body; a JSON body names it in "
            "`source`.",
        ),
    ] = "api",
) -> dict[str, Any]:
    """Append one TickIngested per tick to `ticks` (keyed by instrument), the whole batch in one go.

    The body is an `IngestTicks` JSON document, or, for bulk loaders, the ticks as columns in an Arrow IPC stream
    or a Parquet file (by `Content-Type`), validated by the same rules. Sequences per instrument are claimed once
    per batch and the events encoded in one call.
    """
    body = await tick_bodies.read(request, source)
    services.ticks_limiter.hit(principal.name)
    if body.ticks is not None:
        appended = await services.gateway.ingest_tick_frame(body.ticks, body.source, stamp, body.tick_at)
    else:
        assert body.command is not None
        appended = await services.gateway.ingest_ticks(body.command, stamp)
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


def publish_schemas(app: FastAPI) -> None:
    """Keep `IngestTicks` (and `Tick`) in the OpenAPI components: the ticks route reads its body itself (as columns,
    not a model per tick), so FastAPI does not see the model it is described by."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schema = IngestTicks.model_json_schema(ref_template="#/components/schemas/{model}")
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["IngestTicks"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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
