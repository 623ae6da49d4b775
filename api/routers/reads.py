"""Queries over the read models: thin, paginated, filterable, each answer with its projection's checkpoint.

Traders read their own accounts only (another account's order is simply not found); viewers, risk officers and
admins read every account. Market data (candles, signals) is open to every role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Table

from api.auth import Principal
from api.deps import PRINTABLE, Reader, ServicesDep
from api.errors import Forbidden, InvalidQuery, NotFound, ReadModelBehind
from api.list_route import ListRoute
from api.models import (
    Candle,
    Fill,
    Order,
    OrderEvent,
    OrderWithCheckpoint,
    PnlRow,
    PositionRow,
    Rejection,
    RiskLimitsRow,
    Signal,
    page_model,
)
from api.problems import documented
from domain.lifecycle import OrderStatus
from projections import tables
from projections.errors import ProjectionError
from projections.projectors.market import TIMEFRAMES
from projections.queries import Page, Position
from projections.statements import Condition

router = APIRouter(prefix="/v1", tags=["queries"])
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])

_WAITED = (
    (422, "A filter, cursor or min_offset is not valid"),
    (429, "With ?min_offset=: too many waits of this caller at once; see Retry-After"),
    (503, "With ?min_offset=: the projection has not got there in time; retry"),
)
_RESPONSES = documented(401, (403, "Another account's data (traders read their own accounts only)"), *_WAITED)
_ONE_ORDER = documented(401, (404, "No such order, or another account's (the same answer either way)"), *_WAITED)
_MARKET = documented(401, *_WAITED)  # market data: every role reads it, no account filter
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="The `next` of the previous page.")]
MinOffset = Annotated[
    str | None,
    Query(
        max_length=300,
        pattern=r"^[A-Za-z0-9._\-]+:\d+:\d+$",
        description="Wait (bounded) until the projection has read past this `topic:partition:offset` — the "
        "`event` a command answered with — so the answer includes your own write.",
    ),
]
Filter = Annotated[str | None, Query(min_length=1, max_length=64, pattern=PRINTABLE)]


@dataclass(frozen=True)
class Paging:
    """Where a list starts and how long it is, and the write it must include."""

    cursor: str | None = None
    limit: int = 100
    min_offset: str | None = None


async def _paging(cursor: Cursor = None, limit: Limit = 100, min_offset: MinOffset = None) -> Paging:
    # A coroutine on purpose: FastAPI runs a class or a plain function dependency in its threadpool, a thread hop
    # on every list request.
    return Paging(cursor, limit, min_offset)


Pages = Annotated[Paging, Depends(_paging)]


async def _caught_up(services: ServicesDep, principal: Principal, projection: str, min_offset: str | None) -> None:
    """Return once ``projection`` has read past ``min_offset``: 422 for a token it can never reach, checked before any
    wait; 429 when the caller already waits on too many; 503 when it has not got there in time."""
    if min_offset is None:
        return
    try:
        position = Position.parse(min_offset, services.topic_prefix)
    except ProjectionError as err:
        raise InvalidQuery(str(err), field="min_offset", rule="min_offset.format") from err
    await services.log_bounds.check(projection, position)
    if await services.read_models.passed(projection, position):
        return
    async with services.read_waits.slot(principal.name):
        if not await services.read_models.wait_for(projection, position, services.read_wait_timeout_s):
            raise ReadModelBehind(f"the {projection} read model has not read past {min_offset} yet; retry shortly")


def _scope(principal: Principal, account_id: str | None) -> list[Condition]:
    """The account filter a caller gets: theirs only, unless they read every account."""
    if account_id is not None:
        if not principal.may_read(account_id):
            raise Forbidden(f"{principal.name} may not read account {account_id}")
        return [Condition("account_id", "=", account_id)]
    if principal.reads_every_account:
        return []
    return [Condition("account_id", "any", sorted(principal.accounts))]


def _equal(**filters: Any) -> list[Condition]:
    return [Condition(name, "=", value) for name, value in filters.items() if value is not None]


def _answer(document: dict[str, Any]) -> Response:
    # The route's response_model documents the answer; the rows are already rendered as it declares them (exact
    # decimals as text, ISO 8601 times), so validating them again through the model would change nothing. The
    # bytes are pydantic-core's, as the model's own serializer wrote them.
    return Response(to_json(document), media_type="application/json")


def _listed(path: str, **documentation: Any) -> Callable[[Endpoint], Endpoint]:
    """``router.get`` for a hot list route, with the route class that answers plainly valid requests at the
    framework's floor (``api.list_route``)."""

    def add(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], route_class_override=ListRoute, **documentation)
        return endpoint

    return add


async def _page(
    services: ServicesDep,
    principal: Principal,
    projection: str,
    table: Table,
    where: list[Condition],
    paging: Paging,
) -> Response:
    await _caught_up(services, principal, projection, paging.min_offset)
    try:
        page: Page = await services.read_models.page(
            projection, table, where=where, cursor=paging.cursor, limit=paging.limit
        )
    except ProjectionError as err:
        raise InvalidQuery(str(err)) from err
    return _answer(page.document())


@_listed("/orders", summary="List orders", response_model=page_model(Order), responses=_RESPONSES, tags=["orders"])
async def list_orders(
    principal: Reader,
    services: ServicesDep,
    paging: Pages,
    account_id: Filter = None,
    instrument: Filter = None,
    status: Annotated[OrderStatus | None, Query()] = None,
) -> Response:
    """Orders in their current state, by order id; `next` pages on."""
    where = _scope(principal, account_id) + _equal(instrument=instrument, status=status)
    return await _page(services, principal, "orders", tables.orders, where, paging)


@router.get(
    "/orders/{order_id}",
    summary="An order's current state",
    response_model=OrderWithCheckpoint,
    responses=_ONE_ORDER,
    tags=["orders"],
)
async def get_order(order_id: Id, principal: Reader, services: ServicesDep, min_offset: MinOffset = None) -> Response:
    """The order as its events left it: status, filled and leaves quantity, limit, reason."""
    await _caught_up(services, principal, "orders", min_offset)
    page = await services.read_models.rows("orders", tables.orders, _equal(order_id=order_id))
    if not page.items or not principal.may_read(page.items[0]["account_id"]):
        raise NotFound(f"no order {order_id} (yet: pass ?min_offset= to wait for your own)")
    return _answer({**page.items[0], "checkpoint": page.checkpoint.document()})


@router.get(
    "/orders/{order_id}/events",
    summary="An order's audit trail",
    response_model=page_model(OrderEvent),
    responses=_ONE_ORDER,
    tags=["orders"],
)
async def order_trail(order_id: Id, principal: Reader, services: ServicesDep, min_offset: MinOffset = None) -> Response:
    """Every event of the order — request, risk's decision, the venue's fills and cancels — in the order they were
    caused, each with its event id, correlation id, causation id and where it is in the log."""
    await _caught_up(services, principal, "order_events", min_offset)
    page = await services.read_models.trail(order_id)
    if not page.items or not principal.may_read(page.items[0]["account_id"]):
        raise NotFound(f"no events of order {order_id}")
    return _answer(page.document())


@_listed("/fills", summary="List fills", response_model=page_model(Fill), responses=_RESPONSES)
async def list_fills(
    principal: Reader,
    services: ServicesDep,
    paging: Pages,
    account_id: Filter = None,
    order_id: Filter = None,
    instrument: Filter = None,
) -> Response:
    """Fills in log order, with price, quantity, liquidity and fee."""
    where = _scope(principal, account_id) + _equal(order_id=order_id, instrument=instrument)
    return await _page(services, principal, "fills", tables.fills, where, paging)


def _per_account_and_instrument(
    path: str, projection: str, table: Table, row: type[BaseModel], summary: str, description: str
) -> None:
    """A list route over a read model keyed by account and instrument (positions, pnl)."""

    async def route(
        principal: Reader,
        services: ServicesDep,
        paging: Pages,
        account_id: Filter = None,
        instrument: Filter = None,
    ) -> Response:
        where = _scope(principal, account_id) + _equal(instrument=instrument)
        return await _page(services, principal, projection, table, where, paging)

    _listed(
        path,
        summary=summary,
        description=description,
        response_model=page_model(row),
        responses=_RESPONSES,
        name=f"list_{projection}",
    )(route)


_per_account_and_instrument(
    "/positions",
    "positions",
    tables.positions,
    PositionRow,
    "List positions",
    "Each account's position per instrument: quantity, average price, realized PnL, fees (average cost).",
)
_per_account_and_instrument(
    "/pnl",
    "pnl",
    tables.pnl,
    PnlRow,
    "PnL per account and instrument",
    "Realized PnL, and unrealized PnL marked at the instrument's latest tick (last trade, else mid quote).",
)


@router.get("/candles", summary="OHLCV candles", response_model=page_model(Candle), responses=_MARKET)
async def list_candles(
    principal: Reader,
    services: ServicesDep,
    paging: Pages,
    instrument: Annotated[str, Query(min_length=1, max_length=64, pattern=PRINTABLE)],
    timeframe: Annotated[Literal["1s", "1m", "5m", "1h"], Query(description=f"One of {', '.join(TIMEFRAMES)}.")],
    start: Annotated[datetime | None, Query(alias="from", description="First bucket start, inclusive.")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Last bucket start, exclusive.")] = None,
) -> Response:
    """Open, high, low, close (last trade, else mid quote), volume (traded size) and tick count per bucket of
    event time, oldest first."""
    where = _equal(instrument=instrument, timeframe=timeframe)
    if start is not None:
        where.append(Condition("bucket_start", ">=", start))
    if end is not None:
        where.append(Condition("bucket_start", "<", end))
    return await _page(services, principal, "candles", tables.candles, where, paging)


@router.get(
    "/signals",
    summary="The latest signal per instrument and indicator",
    response_model=page_model(Signal),
    responses=_MARKET,
)
async def list_signals(
    principal: Reader,
    services: ServicesDep,
    paging: Pages,
    instrument: Filter = None,
    indicator: Filter = None,
) -> Response:
    """Direction, strength and indicator values of the latest signal."""
    where = _equal(instrument=instrument, indicator=indicator)
    return await _page(services, principal, "signals_latest", tables.signals_latest, where, paging)


@router.get(
    "/risk/rejections",
    summary="Orders and amends risk rejected",
    response_model=page_model(Rejection),
    responses=_RESPONSES,
    tags=["risk"],
)
async def list_rejections(
    principal: Reader,
    services: ServicesDep,
    paging: Pages,
    account_id: Filter = None,
    instrument: Filter = None,
    reason_code: Filter = None,
) -> Response:
    """Each rejection with its reason code and text, in log order."""
    where = _scope(principal, account_id) + _equal(instrument=instrument, reason_code=reason_code)
    return await _page(services, principal, "risk_rejections", tables.risk_rejections, where, paging)


@router.get(
    "/risk/limits",
    summary="Risk limits and kill switches per account",
    response_model=page_model(RiskLimitsRow),
    responses=_RESPONSES,
    tags=["risk"],
)
async def list_risk_limits(
    principal: Reader, services: ServicesDep, paging: Pages, account_id: Filter = None
) -> Response:
    """Each account's limits and kill switch, as its last RiskLimitsSet and KillSwitchToggled left them."""
    where = _scope(principal, account_id)
    return await _page(services, principal, "risk_limits", tables.risk_limits, where, paging)
