"""Live push: GET /v1/stream, server-sent events of every committed read-model change the caller may read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import PRINTABLE, Reader, ServicesDep
from api.errors import Forbidden
from api.live import Audience, Behind, LiveFeed, Subscription, sse
from api.problems import documented
from projections.live import KINDS

router = APIRouter(prefix="/v1", tags=["live"])

Kind = Literal["order", "fill", "position", "pnl", "candle", "signal", "rejection", "limits"]
KEEPALIVE_S = 15.0  # a comment line this often, so proxies keep the stream and clients notice a dead one


class LiveMessage(BaseModel):
    """The `data` of every `change` event (its SSE `event` is the kind, its `id` the checkpoint)."""

    checkpoint: int = Field(description="The change's place in the feed; send it back as Last-Event-ID to resume.")
    kind: Kind = Field(description="Which read model changed: its `row` is shaped as that model's GET answers.")
    account_id: str | None = Field(description="The account the row belongs to; null for market data.")
    committed_at: str = Field(description="When the projector committed the change (ISO 8601, UTC).")
    row: dict[str, Any] = Field(description="The read-model row after the change (orders, fills, positions, pnl, ...).")


EVENT_STREAM = {
    200: {
        "description": 'An endless `text/event-stream`. First `event: ready` (`data: {"checkpoint": n}`), or '
        "`event: reset` when Last-Event-ID is older than the feed keeps (reload with the GET routes, then follow); "
        "then one event per change, `event:` its kind, `id:` its checkpoint, `data:` a LiveMessage; a `:` comment "
        f"every {KEEPALIVE_S:.0f} s.",
        "content": {"text/event-stream": {"schema": LiveMessage.model_json_schema()}},
    },
    **documented(
        401,
        (403, "Another account's changes (traders follow their own accounts only)"),
        (422, "Last-Event-ID or a filter is not valid"),
    ),
}


@router.get(
    "/stream",
    summary="Live changes (server-sent events)",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
)
async def stream(
    principal: Reader,
    services: ServicesDep,
    account_id: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=PRINTABLE, description="Only this account.")
    ] = None,
    kind: Annotated[list[Kind] | None, Query(description="Only these kinds (repeat the parameter).")] = None,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, description="The last checkpoint received: resume after it."),
    ] = None,
) -> StreamingResponse:
    """Every change the projector commits to orders, fills, positions, PnL, candles, signals, risk rejections and
    risk limits,
    as it commits, filtered as the GET routes are: a trader gets their own accounts' changes (and market data), other
    roles every account's. Send the `Authorization` header as for any route (the dashboard reads the stream with
    `fetch()`; a browser `EventSource` cannot send it). Reconnect with `Last-Event-ID` to get what you missed, then
    the live changes, with no gap and no repeat."""
    if account_id is not None and not principal.may_read(account_id):
        raise Forbidden(f"{principal.name} may not read account {account_id}")

    audience = Audience(
        frozenset(kind or KINDS.values()), principal.reads_every_account, principal.accounts, account_id
    )
    return StreamingResponse(
        _events(services.live, audience, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(feed: LiveFeed, audience: Audience, after: int | None) -> AsyncIterator[str | bytes]:
    try:
        async with feed.subscribe(audience, after) as (start, missed, sub):
            yield sse("ready", start, {"checkpoint": start})
            for change in missed:
                yield change.event
            async for text in _follow(sub, start):
                yield text
    except Behind as err:
        async with feed.subscribe(audience, None) as (start, _, sub):
            yield sse("reset", start, {"checkpoint": start, "detail": str(err)})
            async for text in _follow(sub, start):
                yield text


async def _follow(sub: Subscription, after: int) -> AsyncIterator[str | bytes]:
    """The changes ``sub`` receives past ``after``, as they come, with a keep-alive comment when there are none."""
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE_S):  # a timer, not a task per wait as wait_for makes
                share = await sub.queue.get()
        except TimeoutError:
            yield ": keepalive\n\n"
            continue
        # What queued up meanwhile goes out in the same write: one send per wake-up, not one per change; each share's
        # bytes were encoded once for its whole audience.
        chunks = []
        while share is not None:
            sub.take(share)
            chunks.append(share.since(after))
            if sub.queue.empty():
                break
            share = sub.queue.get_nowait()
        sent = b"".join(chunks)
        if sent:
            yield sent
        if share is None:  # dropped (too slow) or shutting down: the client reconnects with its last id
            return
