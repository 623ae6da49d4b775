"""Order entry: place, cancel, amend."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Query, Response

from api.auth import Principal
from api.bodies import StrictJsonRoute
from api.deps import PRINTABLE, CommandStamp, IdempotencyKey, ServicesDep, Trader
from api.models import EventRef, OrderAck, WaitFor
from api.place_route import PlaceOrderRoute
from api.problems import documented
from commands.gateway import UnknownOrder
from commands.models import AmendOrder, CancelOrder, PlaceOrder
from commands.refs import OrderRef
from domain.lifecycle import INITIAL
from streams.kafka import tracing

router = APIRouter(prefix="/v1/orders", tags=["orders"], route_class=StrictJsonRoute)


OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$", description="The order's id.")]
_ERRORS = (
    401,
    (403, "Not this caller's account, or not a trading role"),
    422,
    (429, "The account is over its command rate; see Retry-After"),
    (503, "Kafka did not confirm in time: the command may be in the log; retry the same request"),
)
_NO_ORDER = (404, "No such order, or not one the caller may see")


async def once(
    services: ServicesDep,
    principal: Principal,
    key: str | None,
    request: Callable[[], str],
    compute: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> dict[str, Any]:
    """Run ``compute`` once per Idempotency-Key of this caller; without a key, just run it. ``request()`` is the
    request as text, made only when there is a key to tie it to."""
    if key is None:
        return (await compute())[1]
    digest = hashlib.sha256(request().encode()).hexdigest()
    _, body = await services.idempotency.run(principal.name, key, digest, compute)
    return body


def _owner_check(principal: Principal, services: ServicesDep) -> Callable[[OrderRef], None]:
    def authorize(order: OrderRef) -> None:
        # An order the caller may not read does not exist for them, as on GET: order ids are derived from the
        # account and client order id, so a 403 naming the account would confirm who trades what.
        if not principal.may_read(order.account_id):
            raise UnknownOrder(f"no order {order.order_id}")
        principal.require_account(order.account_id)
        services.account_limiter.hit(order.account_id)

    return authorize


async def place_order(
    command: PlaceOrder,
    principal: Trader,
    services: ServicesDep,
    stamp: CommandStamp,
    idempotency_key: IdempotencyKey = None,
    wait: Annotated[
        WaitFor | None,
        Query(
            description="Wait (bounded by TRADECORE_ORDER_WAIT_TIMEOUT_S) for risk's decision: 200 ACCEPTED or "
            "REJECTED with its reason; still 202 PENDING if risk has not decided in time."
        ),
    ] = None,
) -> Response:
    """Append OrderPlaced to `orders`. A repeat (same `client_order_id` for the account, or the same
    Idempotency-Key) returns the first outcome and appends nothing."""
    principal.require_account(command.account_id)
    services.account_limiter.hit(command.account_id)

    async def compute() -> tuple[int, dict[str, Any]]:
        # The order may be appended in another request's batch (group commit): it takes its own trace along.
        placed = await services.gateway.place(command, stamp, tracing.current() or None)
        ack = OrderAck(order_id=placed.order_id, status=INITIAL, event=EventRef(**placed.appended._asdict()))
        return 202, ack.model_dump()

    body = await once(
        services, principal, idempotency_key, lambda: "POST /v1/orders " + command.model_dump_json(), compute
    )
    status = 202
    if wait is not None:
        decision = await services.outcomes.wait(body["order_id"], services.order_wait_timeout_s)
        if decision is not None:
            status = 200
            body = {**body, "status": decision.status, "reason_code": decision.reason_code, "reason": decision.reason}
    # The body is an OrderAck's fields already: encoded as it is, not validated against the model again.
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers={"Location": f"/v1/orders/{body['order_id']}"},
    )


# Added, not decorated, to give it its own route class; before the routes below, so the document keeps its order.
router.add_api_route(
    "",
    place_order,
    methods=["POST"],
    status_code=202,
    response_model=OrderAck,
    responses={
        **documented(400, 409, 413, *_ERRORS),
        200: {"description": "With ?wait=ACCEPTED: risk accepted or rejected the order in time", "model": OrderAck},
    },
    summary="Place an order",
    route_class_override=PlaceOrderRoute,
)
[place_route] = [route for route in router.routes if isinstance(route, PlaceOrderRoute)]  # api.order_entry's


@router.delete(
    "/{order_id}",
    status_code=202,
    response_model=OrderAck,
    responses=documented(_NO_ORDER, *_ERRORS),
    summary="Cancel an order",
)
async def cancel_order(
    order_id: OrderId,
    principal: Trader,
    services: ServicesDep,
    stamp: CommandStamp,
    reason: Annotated[
        str | None, Query(max_length=200, pattern=PRINTABLE, description="Kept in the audit trail.")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Append CancelRequested; the venue answers with OrderCancelled or CancelRejected on `executions`."""
    command = CancelOrder(reason=reason)

    async def compute() -> tuple[int, dict[str, Any]]:
        done = await services.gateway.cancel(order_id, command, stamp, _owner_check(principal, services))
        ack = OrderAck(order_id=order_id, status="CANCEL_REQUESTED", event=EventRef(**done.appended._asdict()))
        return 202, ack.model_dump()

    return await once(
        services, principal, idempotency_key, lambda: f"DELETE {order_id} {command.model_dump_json()}", compute
    )


@router.patch(
    "/{order_id}",
    status_code=202,
    response_model=OrderAck,
    responses=documented(400, _NO_ORDER, 413, *_ERRORS),
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
        ack = OrderAck(order_id=order_id, status="AMEND_REQUESTED", event=EventRef(**done.appended._asdict()))
        return 202, ack.model_dump()

    return await once(
        services, principal, idempotency_key, lambda: f"PATCH {order_id} {command.model_dump_json()}", compute
    )
