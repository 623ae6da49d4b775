"""Point-in-time state: an account's positions and open orders as of any past moment, folded from the log."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.auth import Principal, Role
from api.deps import ServicesDep, require
from api.errors import Forbidden, HistoryUnavailable, InvalidQuery
from api.problems import documented
from api.routers.accounts import AccountId
from domain.lifecycle import OrderStatus
from schemas.contract_errors import RegistryUnavailableError
from streams.replay.errors import ReplayError

router = APIRouter(prefix="/v1", tags=["history"])
Reader = Annotated[Principal, Depends(require(Role.TRADER, Role.VIEWER, Role.RISK, Role.ADMIN))]


class PositionAsOf(BaseModel):
    instrument: str
    quantity: Decimal
    average_price: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    cost_method: str
    last_fill_id: str
    updated_at: datetime


class OpenOrderAsOf(BaseModel):
    order_id: str
    client_order_id: str
    instrument: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    limit_price: Decimal | None
    filled: Decimal
    leaves: Decimal
    status: OrderStatus
    placed_at: datetime
    updated_at: datetime


class AccountStateAsOf(BaseModel):
    account_id: str
    as_of: datetime
    positions: list[PositionAsOf]
    open_orders: list[OpenOrderAsOf]
    records_read: int


@router.get(
    "/accounts/{account_id}/state",
    response_model=AccountStateAsOf,
    responses=documented(
        401,
        (403, "A trader asking for another's account"),
        (422, "as_of is not an ISO 8601 time with a zone, or is in the future"),
        (429, "The caller is over its rate of state queries; see Retry-After"),
        (503, "Kafka or the schema registry could not be read; retry"),
    ),
    summary="Positions and open orders as of a moment",
)
def account_state(
    account_id: AccountId,
    principal: Reader,
    services: ServicesDep,
    as_of: Annotated[
        datetime | None,
        Query(description="ISO 8601 time with a zone, e.g. 2026-11-21T02:00:00Z; default: now."),
    ] = None,
) -> dict[str, Any]:
    """Computed by folding the account's events up to `as_of` from Kafka (not read from the current tables):
    positions as the positions processor published them at that moment, and the orders still open then."""
    if not principal.may_read(account_id):
        raise Forbidden(f"{principal.name} may not read account {account_id}")
    services.history_limiter.hit(principal.name)
    now = datetime.now(UTC)
    if as_of is None:
        as_of = now
    elif as_of.tzinfo is None:
        raise InvalidQuery(f"as_of {as_of.isoformat()} has no zone; add one: Z for UTC, or +02:00")
    elif as_of > now:
        raise InvalidQuery(f"as_of {as_of.isoformat()} is in the future (now is {now.isoformat()})")
    try:
        state = services.history.state(account_id, as_of.astimezone(UTC))
    except (ReplayError, RegistryUnavailableError) as err:
        raise HistoryUnavailable(f"the log could not be read: {err}") from err
    return AccountStateAsOf(
        account_id=account_id,
        as_of=state.as_of,
        positions=[
            PositionAsOf(
                instrument=p.instrument,
                quantity=p.quantity,
                average_price=p.average_price,
                realized_pnl=p.realized_pnl,
                fees_paid=p.fees_paid,
                cost_method=p.cost_method,
                last_fill_id=p.fill_id,
                updated_at=p.envelope.occurred_at,
            )
            for p in state.positions
        ],
        open_orders=[
            OpenOrderAsOf(
                order_id=o.order_id,
                client_order_id=o.client_order_id,
                instrument=o.instrument,
                side=o.side.value,
                order_type=o.order_type.value,
                time_in_force=o.time_in_force.value,
                quantity=o.quantity,
                limit_price=o.limit_price,
                filled=o.filled,
                leaves=o.leaves,
                status=o.status,
                placed_at=o.placed_at,
                updated_at=o.updated_at,
            )
            for o in state.open_orders
        ],
        records_read=state.records_read,
    ).model_dump(mode="json")
