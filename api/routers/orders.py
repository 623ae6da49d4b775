"""Order entry: place, cancel, amend."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from api.auth import Principal
from api.deps import CommandStamp, IdempotencyKey, ServicesDep, Trader
from api.models import EventRef, OrderAck
from commands.models import AmendOrder, CancelOrder, PlaceOrder
from commands.refs import OrderRef
from streams.kafka import tracing

router = APIRouter(prefix="/v1/orders", tags=["orders"])

OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$", description="The order's id.")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid access token"},
    403: {"description": "Not this caller's account, or not a trading role"},
    422: {"description": "A field breaks a rule; `errors` names each field and rule"},
    429: {"description": "The account is over its command rate; see Retry-After"},
    503: {"description": "Kafka did not acknowledge; nothing was recorded, retry"},
}


async def once(
    services: ServicesDep,
    principal: Principal,
    key: str | None,
    request: BaseModel | str,
    compute: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> dict[str, Any]:
    """Run ``compute`` once per Idempotency-Key of this caller; without a key, just run it."""
    if key is None:
        return (await compute())[1]
    payload = request if isinstance(request, str) else request.model_dump_json()
    _, body = await services.idempotency.run(principal.name, key, hashlib.sha256(payload.encode()).hexdigest(), compute)
    return body


def _owner_check(principal: Principal, services: ServicesDep) -> Callable[[OrderRef], None]:
    def authorize(order: OrderRef) -> None:
        principal.require_account(order.account_id)
        services.account_limiter.hit(order.account_id)

    return authorize


@router.post(
    "",
    status_code=202,
    response_model=OrderAck,
    responses={
        **_ERRORS,
        200: {"description": "With ?wait=accepted: risk accepted or rejected the order in time", "model": OrderAck},
        409: {"description": "client_order_id already used for a different order"},
    },
    summary="Place an order",
)
async def place_order(
    command: PlaceOrder,
    principal: Trader,
    services: ServicesDep,
    stamp: CommandStamp,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Annotated[
        Literal["accepted"] | None,
        Query(
            description="Wait (bounded by TRADECORE_ORDER_WAIT_TIMEOUT_S) for risk's decision: 200 accepted or "
            "rejected with its reason; still 202 pending if risk has not decided in time."
        ),
    ] = None,
) -> dict[str, Any]:
    """Append OrderPlaced to `orders`. A repeat (same `client_order_id` for the account, or the same
    Idempotency-Key) returns the first outcome and appends nothing."""
    principal.require_account(command.account_id)
    services.account_limiter.hit(command.account_id)

    async def compute() -> tuple[int, dict[str, Any]]:
        # The order may be appended in another request's batch (group commit): it takes its own trace along.
        placed = await services.gateway.place(command, stamp, tracing.current() or None)
        ack = OrderAck(order_id=placed.order_id, status="pending", event=EventRef(**asdict(placed.appended)))
        return 202, ack.model_dump()

    body = await once(services, principal, idempotency_key, "POST /v1/orders " + command.model_dump_json(), compute)
    response.headers["Location"] = f"/v1/orders/{body['order_id']}"
    if wait is not None:
        decision = await services.outcomes.wait(body["order_id"], services.order_wait_timeout_s)
        if decision is not None:
            response.status_code = 200
            body = {**body, "status": decision.status, "reason_code": decision.reason_code, "reason": decision.reason}
    return body


@router.delete(
    "/{order_id}",
    status_code=202,
    response_model=OrderAck,
    responses={**_ERRORS, 404: {"description": "No such order"}},
    summary="Cancel an order",
)
async def cancel_order(
    order_id: OrderId,
    principal: Trader,
    services: ServicesDep,
    stamp: CommandStamp,
    reason: Annotated[str | None, Query(max_length=200, description="Kept in the audit trail.")] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Append CancelRequested; the venue answers with OrderCancelled or CancelRejected on `executions`."""
    command = CancelOrder(reason=reason)

    async def compute() -> tuple[int, dict[str, Any]]:
        done = await services.gateway.cancel(order_id, command, stamp, _owner_check(principal, services))
        ack = OrderAck(order_id=order_id, status="cancel_requested", event=EventRef(**asdict(done.appended)))
        return 202, ack.model_dump()

    return await once(services, principal, idempotency_key, f"DELETE {order_id} {command.model_dump_json()}", compute)


@router.patch(
    "/{order_id}",
    status_code=202,
    response_model=OrderAck,
    responses={**_ERRORS, 404: {"description": "No such order"}},
    summary="Amend an order",
)
async def amend_order(
    order_id: OrderId,
    command: AmendOrder,
    principal: Trader,
    services: ServicesDep,
    stamp: CommandStamp,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Append AmendRequested with the new quantity and/or limit price."""

    async def compute() -> tuple[int, dict[str, Any]]:
        done = await services.gateway.amend(order_id, command, stamp, _owner_check(principal, services))
        ack = OrderAck(order_id=order_id, status="amend_requested", event=EventRef(**asdict(done.appended)))
        return 202, ack.model_dump()

    return await once(services, principal, idempotency_key, f"PATCH {order_id} {command.model_dump_json()}", compute)
